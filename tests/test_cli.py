"""The command line end to end, in-process: train, answer, compare, demo.

Each command runs through ``shared.cli.main`` exactly as the console script
does; models are tiny so that each training run takes a second or two.
"""

from __future__ import annotations

import json

import pytest

from shared import load_checkpoint
from shared.cli import main

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
        assert history["backend"] == backend and len(history["loss"]) == 2 * 3
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
    path = str(trained["torch"] / "model.safetensors")
    assert main(["compare", path, "--task", "addition", "--n", "16"]) == 0
    table = capsys.readouterr().out
    for row in ("hand-off h layer 0", "hand-off c layer 0", "logits", "greedy agreement: 100.0%"):
        assert row in table
    assert main(["compare", path, "--json", "--n", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["greedy_agreement"] == 1.0
    assert report["max_abs_diff"]["handoff"] <= 1e-5


def test_demo_writes_report_plot_and_checkpoint(tmp_path, monkeypatch, capsys):
    import shared.demo

    tiny = {"n": 128, "epochs": 1, "hidden_size": 8, "embedding_dim": 8}
    monkeypatch.setitem(shared.demo.SETTINGS, "quick", tiny)
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
    assert main(["compare", path, "--task", "addition", "--n", "8"]) == 0
    table = capsys.readouterr().out
    assert "hand-off h layer 0" in table and "hand-off c" not in table


def test_demo_with_a_gru_says_which_cell(tmp_path, monkeypatch, capsys):
    import shared.demo

    tiny = {"n": 128, "epochs": 1, "hidden_size": 8, "embedding_dim": 8}
    monkeypatch.setitem(shared.demo.SETTINGS, "quick", tiny)
    assert main(["demo", "--quick", "--task", "reverse", "--cell", "gru",
                 "--out", str(tmp_path)]) == 0
    assert "cell gru: the encoder hands the decoder h alone" in capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cell"] == "gru" and report["parity_ok"]


def test_compare_keras_backends_prints_one_table_of_every_engine(trained, capsys):
    """Keras on another backend runs in its own worker process; one table of every pair."""
    pytest.importorskip("torch")
    path = str(trained["keras"] / "model.safetensors")
    code = main(["compare", path, "--n", "6", "--max-len", "6", "--keras-backends", "torch",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"], report
    pairs = {(row["first"], row["second"]) for row in report["pairs"]}
    assert pairs == {("reference", "keras/torch"), ("reference", "torch"),
                     ("keras/torch", "torch")}
    worst = max(row["handoff"] for row in report["pairs"])
    assert 0 < worst <= 1e-5, "float32 engines against a float64 reference differ a little"


def test_compare_keras_backends_refuses_an_unknown_backend(trained, capsys):
    path = str(trained["keras"] / "model.safetensors")
    assert main(["compare", path, "--keras-backends", "tensorflow,theano"]) == 2
    error = capsys.readouterr().err
    assert "--keras-backends" in error and "'tensorflow,theano'" in error and "jax" in error


def test_attention_trains_answers_and_compares(tmp_path, capsys):
    """--attention luong: the checkpoint says so, both backends answer alike, and compare
    checks the attention weights besides the hand-off and the logits."""
    out = tmp_path / "luong"
    assert main(["train", "--backend", "keras", "--task", "reverse", *TINY, "--bidirectional",
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
    assert "attention weights" in capsys.readouterr().out
