"""The command line end to end, in-process: train, answer, compare, demo.

Each command runs through ``shared.app.cli.main`` exactly as the console script
does; models are tiny so that each training run takes a second or two.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared import Seq2SeqConfig, load_checkpoint, load_task, save_checkpoint
from shared.app.cli import main
from shared.app.quiet import filtered_stderr, is_hidden_notice
from shared.layout import random_weights
from shared.text.data import build_tokenizers

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

TINY = ["--n", "96", "--epochs", "2", "--batch-size", "32", "--embedding-dim", "8",
        "--hidden-size", "12", "--lr", "0.02"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint from each backend, trained on the same task."""
    paths = {}
    for backend in ("keras", "torch"):
        out = tmp_path_factory.mktemp(backend)
        code = main(["train", "--backend", backend, "--task", "addition", *TINY, "--out", str(out)])
        assert code == 0
        paths[backend] = out
    return paths


def test_train_writes_checkpoint_and_history(trained):
    for backend, out in trained.items():
        history = json.loads((out / "history.json").read_text())
        assert history["backend"] == backend and len(history["step_loss"]) == 2 * 3
        assert history["epoch"] == [1, 2] and len(history["loss"]) == 2
        assert history["val_loss"] == []  # 10% of 96 pairs is less than a batch: none held out
        checkpoint = load_checkpoint(out / "model.safetensors")
        assert checkpoint.config.hidden_size == 12


@pytest.mark.parametrize("saved_by", ["keras", "torch"])
def test_answer_with_either_backend_gives_the_same_lines(trained, saved_by, capsys):
    path = str(trained[saved_by] / "model.safetensors")
    questions = ["12+7", "3+40", ""]
    outputs = {}
    for backend in ("keras", "torch"):
        for beam in ("1", "3"):
            assert main(["answer", path, "--backend", backend, "--beam", beam, *questions]) == 0
            outputs[backend, beam] = capsys.readouterr().out.splitlines()
            assert len(outputs[backend, beam]) == len(questions)
    assert outputs["keras", "1"] == outputs["torch", "1"]
    assert outputs["keras", "3"] == outputs["torch", "3"]


def test_compare_prints_the_parity_table_and_exits_0(trained, capsys):
    """Every engine here against the reference, then every pair: one line each, all ok."""
    path = str(trained["torch"] / "model.safetensors")
    assert main(["compare", path, "--task", "addition", "--n", "16"]) == 0
    table = capsys.readouterr().out
    engines = ["keras/tensorflow", "torch"]
    if importlib.util.find_spec("onnxruntime") is not None:  # onnx joins when installed
        engines.append("onnx")
    header = table.splitlines()[1].split()
    assert header == ["engine", "hand-off", "logits", "final", "state", "greedy", "beam",
                      "result"], table
    lines = {line.split("  ")[0]: line for line in table.splitlines()[3:]}
    for name in [*engines, *(f"{a} vs {b}" for a, b in itertools.combinations(engines, 2))]:
        assert lines[name].split()[-3:] == ["0/16", "0/16", "ok"], f"{name}\n{table}"
    assert "FAIL" not in table
    assert main(["compare", path, "--json", "--n", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["engines"] == engines and report["questions"] == 8
    handoff = [row for row in report["rows"] if row["rung"] == "hand-off"]
    assert {row["tensor"] for row in handoff} == {"h layer 0", "c layer 0"}
    assert {row["engine"] for row in handoff} == set(lines) - {"tolerance"}
    assert all(0 < row["max_abs_diff"] <= 1e-5 for row in handoff if " vs " not in row["engine"])
    tokens = [row for row in report["rows"] if row["rung"] in ("greedy", "beam")]
    assert tokens and all(row["max_abs_diff"] == 0 and row["rows"] == 8 for row in tokens)


def test_demo_writes_report_plot_and_checkpoint(tmp_path, monkeypatch, capsys):
    import shared.app.demo

    tiny = {"n": 128, "epochs": 1, "hidden_size": 8, "embedding_dim": 8}
    monkeypatch.setitem(shared.app.demo.SETTINGS, "quick", tiny)
    assert main(["demo", "--quick", "--task", "reverse", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "parity" in printed and "held-out answers" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["loss"]) == {"keras", "torch"} and len(report["loss"]["keras"]) == 2
    assert report["max_abs_diff"]["handoff"] <= 1e-5 and report["greedy_agreement"] == 1.0
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_checkpoint(tmp_path / "model.safetensors").config.hidden_size == 8


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and "seq2seq-rosetta 0.1.0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out
    assert all(command in usage for command in ("train", "answer", "compare", "demo"))


def test_a_gru_trains_answers_and_compares(tmp_path, capsys):
    """--cell gru: the checkpoint says so, both backends answer alike, the table has no c."""
    out = tmp_path / "gru"
    assert main(["train", "--backend", "torch", "--task", "addition", *TINY, "--cell", "gru",
                 "--out", str(out)]) == 0
    path = str(out / "model.safetensors")
    assert load_checkpoint(path).config.cell == "gru"
    capsys.readouterr()
    answers = {}
    for backend in ("keras", "torch"):
        assert main(["answer", path, "--backend", backend, "--beam", "2", "12+7", "30+4"]) == 0
        answers[backend] = capsys.readouterr().out.splitlines()
    assert answers["keras"] == answers["torch"] and len(answers["torch"]) == 2
    assert main(["compare", path, "--task", "addition", "--n", "8", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["tensor"] for row in rows if row["rung"] == "hand-off"} == {"h layer 0"}


def test_demo_with_a_gru_and_attention_says_so_and_draws_the_weights(tmp_path, monkeypatch,
                                                                     capsys):
    """--cell gru --attention bahdanau: the cell and the attention named, one answer's
    attention weights compared between the frameworks and drawn (attention.png)."""
    import shared.app.demo

    tiny = {"n": 128, "epochs": 1, "hidden_size": 8, "embedding_dim": 8}
    monkeypatch.setitem(shared.app.demo.SETTINGS, "quick", tiny)
    assert main(["demo", "--quick", "--task", "reverse", "--cell", "gru",
                 "--attention", "bahdanau", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert ("cell gru: the encoder hands the decoder h alone, a GRU's state, and its bahdanau "
            "attention reads every encoder output") in printed, printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cell"] == "gru" and report["config"]["attention"] == "bahdanau"
    assert report["parity_ok"] and report["attention"]["max_abs_diff"] <= 1e-5, report
    assert f"Keras vs PyTorch: max |diff| {report['attention']['max_abs_diff']:.1e}" in printed
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_keras_backends_prints_one_table_of_every_engine(trained, capsys):
    """Keras on another backend runs in a process of its own; one table of every engine."""
    pytest.importorskip("torch")
    path = str(trained["keras"] / "model.safetensors")
    code = main(["compare", path, "--n", "6", "--max-len", "6", "--keras-backends", "torch",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"], report
    engines = ["keras/torch", "torch"]
    if importlib.util.find_spec("onnxruntime") is not None:  # onnx joins when installed
        engines.append("onnx")
    assert report["engines"] == engines and report["skipped"] == []
    pairs = [f"{a} vs {b}" for a, b in itertools.combinations(engines, 2)]
    assert list(dict.fromkeys(row["engine"] for row in report["rows"])) == engines + pairs
    worst = max(row["max_abs_diff"] for row in report["rows"]
                if row["engine"] == "keras/torch" and row["rung"] == "hand-off")
    assert 0 < worst <= 1e-5, "float32 engines against a float64 reference differ a little"


def test_compare_keras_backends_refuses_an_unknown_backend(trained, capsys):
    path = str(trained["keras"] / "model.safetensors")
    assert main(["compare", path, "--keras-backends", "tensorflow,theano"]) == 2
    error = capsys.readouterr().err
    assert "--keras-backends" in error and "'tensorflow,theano'" in error and "jax" in error


def test_a_learning_rate_that_diverges_says_so(tmp_path, capsys):
    """--lr 1e308 stops at the first non-finite loss with what to do, and writes nothing.

    torch's progress bar is on stderr: the error still gets a line of its own.  (Both
    backends stop with the same message: test_bad_inputs.py.)
    """
    out = tmp_path / "out"
    argv = ["train", "--backend", "torch", "--task", "addition", *TINY, "--lr", "1e308",
            "--out", str(out)]
    assert main(argv) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress bar, on its own line
    found = re.fullmatch(r"seq2seq-rosetta: error: training diverged at step (\d+): the loss is "
                         r"(nan|inf) \(not finite\) with lr 1e\+308; lower the learning rate "
                         r"\(--lr on the command line\)", last)
    assert found, last
    assert 1 <= int(found[1]) <= 2 * 3, f"step {found[1]} of 6"
    assert not out.exists()


def test_pairs_over_max_length_are_dropped_and_counted(tmp_path, capsys):
    """The long pair is left out of the training and of the vocabulary, and the count printed."""
    data = tmp_path / "pairs.tsv"
    data.write_text("abc\tcba\nde\ted\n" + "xyz" * 4 + "\tzyx\n")
    out = tmp_path / "out"
    assert main(["train", "--backend", "torch", "--data", str(data), "--epochs", "1",
                 "--hidden-size", "4", "--embedding-dim", "3", "--max-length", "11",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("dropped 1 of 3 pairs with a question or answer longer than --max-length 11 "
            "tokens; training on 2") in printed, printed
    checkpoint = load_checkpoint(out / "model.safetensors")
    dropped_only = {"x", "y", "z"} & set(checkpoint.src_tokenizer.tokens)
    assert not dropped_only, f"the vocabulary holds {dropped_only}, seen only in the dropped pair"


def test_no_tensorflow_start_up_lines_on_stderr(tmp_path):
    """A fresh process: answering with Keras prints the answer and nothing on stderr.

    oneDNN is forced on (TensorFlow's default on AVX-512 CPUs), whose notice TensorFlow
    prints while importing, before absl's logging starts, even at TF_CPP_MIN_LOG_LEVEL=3.
    (At the command line's default level 2, a CPU without AVX-512 forced to oneDNN also
    gets one ERROR line at the first op, saying that oneDNN falls back: level 2 shows errors.)
    """
    pairs = load_task("reverse", 16, seed=0)
    src_tok, tgt_tok = build_tokenizers(pairs)
    config = Seq2SeqConfig(len(src_tok), len(tgt_tok), embedding_dim=3, hidden_size=4)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, random_weights(config, seed=1), config, src_tok, tgt_tok)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "shared.app.cli", "answer", str(path), "--backend", "keras", "abc"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"stderr held:\n{done.stderr}"
    assert len(done.stdout.splitlines()) == 1, done.stdout


def test_the_stderr_filter_drops_only_hidden_log_lines(capfd):
    lines = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796238017.691282    6262 port.cc:153] oneDNN custom operations are on.\n",
        b"W0000 00:00:1796238017.691282    6262 cuda.cc:1] a warning\n",
        b"E0000 00:00:1796238017.691282    6262 cuda.cc:2] an error\n",
        b"I said something else\n",
        b"Traceback (most recent call last):\n",
    ]
    with filtered_stderr(lambda line: is_hidden_notice(line, 2)):
        os.write(2, b"".join(lines))
    assert capfd.readouterr().err.encode() == b"".join(lines[3:])
    assert not any(is_hidden_notice(line, 0) for line in lines)
def test_attention_trains_answers_and_compares(tmp_path, capsys):
    """--attention luong: the checkpoint says so, both backends answer alike, and compare
    checks the attention weights besides the hand-off and the logits."""
    out = tmp_path / "luong"
    assert main(["train", "--backend", "torch", "--task", "reverse", *TINY, "--bidirectional",
                 "--attention", "luong", "--out", str(out)]) == 0
    path = str(out / "model.safetensors")
    checkpoint = load_checkpoint(path)
    assert checkpoint.config.attention == "luong" and "decoder.attention.W_a" in checkpoint.weights
    capsys.readouterr()
    answers = {}
    for backend in ("keras", "torch"):
        assert main(["answer", path, "--backend", backend, "--beam", "2", "abcde", "xyz"]) == 0
        answers[backend] = capsys.readouterr().out.splitlines()
    assert answers["keras"] == answers["torch"] and len(answers["torch"]) == 2
    assert main(["compare", path, "--task", "reverse", "--n", "8"]) == 0
    header = capsys.readouterr().out.splitlines()[1].split()
    assert "memory" in header and "attention" in header
