"""The command line with ONNX: export, and answer --backend onnx.

The checkpoint holds random weights (no training needed: every engine must give
the same answers, right or wrong) and real tokenizers.  ``compare`` with its onnx
rows runs in test_cli.py, whose compare runs build a Keras model anyway.
"""

from __future__ import annotations

import pytest

from shared import Tokenizer, load_checkpoint, save_checkpoint
from shared.app.cli import main
from tests.support import grid_config, grid_weights

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


@pytest.fixture(scope="module", params=[("lstm", "none"), ("gru", "none"), ("gru", "bahdanau")],
                ids=lambda param: "-".join(param).replace("-none", ""))
def checkpoint(request, tmp_path_factory):
    config = grid_config(*request.param[:1], 2, True, 6, 6, request.param[1])
    src_tok = Tokenizer(("<pad>", "<bos>", "<eos>", "<unk>", *"0123456789+"[:9]), "char")
    tgt_tok = Tokenizer(src_tok.tokens[: config.tgt_vocab_size], "char")
    path = tmp_path_factory.mktemp("-".join(request.param)) / "model.safetensors"
    save_checkpoint(path, grid_weights(config, seed=3), config, src_tok, tgt_tok)
    return path


def test_export_writes_a_folder_that_onnx_impl_loads(checkpoint, capsys):
    import onnx_impl

    out = checkpoint.parent / "onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (f"wrote {out / 'encoder.onnx'} and "
                                                f"{out / 'decoder.onnx'}")
    model = onnx_impl.load_model(out)
    assert model.checkpoint_sha256 == onnx_impl.load_model(checkpoint).checkpoint_sha256
    assert model.config == load_checkpoint(checkpoint).config  # the attention kind included


def test_answer_with_onnx_gives_torch_s_lines(checkpoint, capsys):
    questions = ["12+7", "3+40", ""]
    lines = {}
    for backend in ("torch", "onnx"):
        for beam in ("1", "3"):
            assert main(["answer", str(checkpoint), "--backend", backend, "--beam", beam,
                         "--max-len", "8", *questions]) == 0
            lines[backend, beam] = capsys.readouterr().out.splitlines()
            assert len(lines[backend, beam]) == len(questions)
    assert lines["torch", "1"] == lines["onnx", "1"] and lines["torch", "3"] == lines["onnx", "3"]


def test_export_refuses_an_unknown_format(checkpoint, capsys):
    assert main(["export", str(checkpoint), "--format", "tflite", "--out", "o"]) == 2
    assert ("argument --format: invalid choice: 'tflite' (choose from 'onnx', 'litert', "
            "'executorch')") in capsys.readouterr().err
