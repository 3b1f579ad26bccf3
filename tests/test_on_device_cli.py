"""The command line with the on-device engines: export, answer and compare.

    seq2seq-rosetta export CKPT --format litert|executorch --out DIR [--batch-size N]
                   [--max-source-length S] [--delegate xnnpack|portable]
    seq2seq-rosetta answer CKPT --backend litert|executorch --exported DIR QUESTION...
    seq2seq-rosetta compare CKPT --exported DIR [--exported DIR]
    seq2seq-rosetta evaluate CKPT --data FILE --backend litert|executorch --exported DIR

The checkpoint holds random weights (every engine must give the same answers, right
or wrong) and real tokenizers; the programs are exported small (batch 2, sources of 3
tokens: the questions are read in pieces, the LSTM's (h, c) carried) to keep the
export seconds few.  Each command runs through ``shared.app.cli.main``.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from shared import Seq2SeqConfig, Tokenizer, save_checkpoint
from shared.app.cli import main
from shared.layout import random_weights
from tests.refusal import cli_refusal
from tests.support import ON_DEVICE, V_SRC, V_TGT

RUNTIMES = [name.removesuffix("_impl") for name in ON_DEVICE]
QUESTIONS = ["abcdefg", "b", ""]  # longer than the programs' 3 positions, one token, none


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = Seq2SeqConfig(V_SRC, V_TGT, 4, 5, cell="lstm")
    src_tok = Tokenizer(("<pad>", "<bos>", "<eos>", "<unk>", *"abcdefghi"), "char")
    tgt_tok = Tokenizer(src_tok.tokens[:V_TGT], "char")
    path = tmp_path_factory.mktemp("on-device-cli") / "model.safetensors"
    save_checkpoint(path, random_weights(config, seed=5, scale=0.8), config, src_tok, tgt_tok)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint):
    """{runtime: folder}: the checkpoint exported by the command, once per runtime; and
    {runtime: the lines it printed}."""
    folders, printed = {}, {}
    for runtime in RUNTIMES:
        out = checkpoint.parent / runtime
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            assert main(["export", str(checkpoint), "--format", runtime, "--out", str(out),
                         "--batch-size", "2", "--max-source-length", "3",
                         *(["--delegate", "portable"] if runtime == "executorch" else [])]) == 0
        folders[runtime], printed[runtime] = out, stdout.getvalue().splitlines()
    return folders, printed


def test_export_writes_the_programs_and_their_fixed_shape_and_says_so(exported):
    folders, printed = exported
    for runtime, out in folders.items():
        metadata = json.loads((out / "metadata.json").read_text())
        assert metadata["format"] == f"seq2seq-rosetta/{runtime}"
        assert (metadata["batch_size"], metadata["max_source_length"]) == (2, 3)
        assert sorted(path.name for path in out.iterdir()) == sorted(
            [*(f["name"] for f in metadata["files"].values()), "metadata.json"])
        lines = printed[runtime]
        assert lines[0] == ("fixed shape: batch_size 2, max_source_length 3 "
                            f"(in {out}/metadata.json)"), lines
        assert lines[1].startswith(f"wrote {out}/encoder.") and lines[2].startswith(
            f"checked: {runtime}_impl loads it"), lines


@pytest.mark.parametrize("beam", ["1", "3"])
def test_answer_on_a_device_runtime_gives_torch_s_lines(checkpoint, exported, beam, capsys):
    exported, lines = exported[0], {}
    for runtime in ["torch", *RUNTIMES]:
        extra = ["--exported", str(exported[runtime])] if runtime in exported else []
        assert main(["answer", str(checkpoint), "--backend", runtime, "--beam", beam,
                     "--max-len", "6", *extra, *QUESTIONS]) == 0
        lines[runtime] = capsys.readouterr().out.splitlines()
        assert len(lines[runtime]) == len(QUESTIONS)
    assert all(found == lines["torch"] for found in lines.values()), lines


def test_compare_adds_a_row_for_each_exported_folder(checkpoint, exported, capsys):
    folders = [arg for out in exported[0].values() for arg in ("--exported", str(out))]
    assert main(["compare", str(checkpoint), "--n", "12", "--max-len", "6", *folders]) == 0
    table = capsys.readouterr().out
    lines = {line.split("  ")[0]: line for line in table.splitlines()[3:]}
    for runtime in RUNTIMES:
        assert lines[runtime].split()[-1] == "ok", table
        assert lines[f"torch vs {runtime}"].split()[-1] == "ok", table


def test_evaluate_on_a_device_runtime_gives_torch_s_figures(checkpoint, exported, capsys):
    """Pairs longer than the programs' source (read in pieces), in batches the programs
    split: exact match, BLEU and chrF equal, the loss and token accuracy to float32."""
    data = checkpoint.parent / "pairs.tsv"
    data.write_text("abcdefg\tab\nb\tcde\nhgfedc\tg\nca\tfa\nd\tbbb\n", encoding="utf-8")
    found = {}
    for runtime in ["torch", *RUNTIMES]:
        extra = ["--exported", str(exported[0][runtime])] if runtime in exported[0] else []
        assert main(["evaluate", str(checkpoint), "--data", str(data), "--backend", runtime,
                     "--batch-size", "3", "--max-len", "5", "--json", *extra]) == 0
        found[runtime] = json.loads(capsys.readouterr().out)
    for runtime, figures in found.items():
        assert figures["pairs"] == 5, figures
        for figure in ("exact_match", "bleu", "chrf"):
            assert figures[figure] == found["torch"][figure], (runtime, figure, found)
        for figure in ("loss", "token_accuracy"):
            assert figures[figure] == pytest.approx(found["torch"][figure], abs=1e-5), (
                runtime, figure, found)


def test_an_on_device_backend_needs_the_folder_of_this_checkpoint(checkpoint, exported,
                                                                   tmp_path, capsys):
    runtime, exported = RUNTIMES[0], exported[0]
    line = cli_refusal(capsys, ["answer", checkpoint, "--backend", runtime, "abc"])
    assert f"--backend {runtime} runs the programs" in line and "give --exported DIR" in line
    line = cli_refusal(capsys, ["answer", checkpoint, "--backend", "torch", "--exported",
                                exported[runtime], "abc"])
    assert "--exported is for --backend" in line
    line = cli_refusal(capsys, ["evaluate", checkpoint, "--backend", runtime, "--task", "dates"])
    assert f"--backend {runtime} runs the programs" in line and "give --exported DIR" in line
    other = tmp_path / "other.safetensors"
    config = Seq2SeqConfig(V_SRC, V_TGT, 4, 5, cell="lstm")
    tokenizer = Tokenizer(("<pad>", "<bos>", "<eos>", "<unk>", *"abcdefghi"), "char")
    save_checkpoint(other, random_weights(config, seed=6), config, tokenizer,
                    Tokenizer(tokenizer.tokens[:V_TGT], "char"))
    line = cli_refusal(capsys, ["answer", other, "--backend", runtime, "--exported",
                                exported[runtime], "abc"])
    assert f"was not exported from {other}" in line, line
    line = cli_refusal(capsys, ["compare", checkpoint, "--exported", checkpoint.parent])
    assert "metadata.json: no such file" in line, line


def test_export_refuses_a_shape_out_of_range(checkpoint, capsys):
    line = cli_refusal(capsys, ["export", checkpoint, "--format", "litert", "--out", "o",
                                "--max-source-length", "0"])
    assert "argument --max-source-length: must be an integer in [1, 1024]; got 0" in line, line
