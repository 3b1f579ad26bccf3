"""Issue 24's findings on the command line and on ``onnx_impl.load_model``'s folders.

    finding 2  a full disk never leaves a 0-byte history.json, nor truncates an old one
    finding 5  flags that ask for more memory than there is: refused before the work
    finding 6  one line, never a traceback: export folders, a framework's out-of-memory
               error, Ctrl-C (exit 130)
    finding 7  messages that name the file and say what to do (no ": None"; a run that
               diverges on its last step says so; answer on a folder)
    finding 8  a second run into a used --out says what it replaces

Every refusal is checked with ``tests.refusal.cli_refusal``: exit code 2, one line
on stderr, nothing on stdout.
"""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from shared import Seq2SeqConfig
from shared.app.cli import main
from shared.core.tokens import BOS, EOS, PAD
from shared.text.data import Batch
from shared.training.checks import TrainingDivergedError
from tests import hostile_files as hf
from tests.checkpoint_files import small_checkpoint
from tests.refusal import cli_refusal, refusal

TINY = ["--n", "16", "--epochs", "1", "--batch-size", "16", "--hidden-size", "4",
        "--embedding-dim", "3"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile_cli") / "model.safetensors"
    small_checkpoint(path)
    return path


# ---- finding 2 and 8: outputs whole or not at all; a used --out is named ----

def test_2_8_a_full_disk_leaves_the_old_history_and_a_second_run_says_what_it_replaces(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["train", "--backend", "torch", "--task", "reverse", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    history = (out / "history.json").read_bytes()
    calls = []

    def full_disk(descriptor):  # the third fsync (after the checkpoint's file and folder):
        # history.json's temporary file, at the end of the one epoch
        calls.append(descriptor)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("shared.files.atomic.os.fsync", full_disk)
    code = main(["train", "--backend", "torch", "--task", "reverse", *TINY, "--seed", "1",
                 "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 2
    assert (f"--out {out} already holds model.safetensors, history.json, loss.png: they will "
            "be replaced when this run ends") in stdout
    line = stderr.splitlines()[-1]
    assert line == ("seq2seq-rosetta: error: No space left on device; free some disk space, "
                    "or write elsewhere (--out)"), line
    assert (out / "history.json").read_bytes() == history  # the old one, whole
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "loss.png",
                                                     "model.safetensors"]
    assert json.loads(history)["loss"]



@pytest.mark.parametrize("history", ["[" * 100_000 + "]" * 100_000,
                                     '{"epoch": [1' + "0" * 5000 + "]}"])
def test_6_a_hostile_history_beside_a_resumed_checkpoint_is_one_line(tmp_path, capsys, history):
    first, second = tmp_path / "first", tmp_path / "second"
    run = ["train", "--backend", "torch", "--task", "reverse", *TINY, "--no-val"]
    assert main([*run, "--out", str(first)]) == 0
    (first / "history.json").write_text(history)
    capsys.readouterr()
    assert main([*run, "--epochs", "2", "--resume", str(first / "model.safetensors"),
                 "--out", str(second)]) == 0
    said = capsys.readouterr().out
    assert f"--resume: {first / 'history.json'} is not readable JSON (" in said, said
    assert json.loads((second / "history.json").read_text())["epoch"][0] == 2  # from the resume

def test_8_export_and_port_say_they_replace_what_was_there(checkpoint, tmp_path, capsys):
    out = tmp_path / "onnx"
    for _ in range(2):
        assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    replaced = "(replacing the encoder.onnx and decoder.onnx that were there)"
    assert replaced in capsys.readouterr().out
    src = hf.write_keras(tmp_path / "m.keras")
    for _ in range(2):
        assert main(["port", str(src), "--to", "torch", "--out", str(tmp_path / "m.pt")]) == 0
    assert capsys.readouterr().out.count("(replacing the file that was there)") == 1


# ---- finding 5: estimated before the work, refused naming the flag ----

def test_5_flags_that_ask_for_too_much_memory_are_refused_before_the_work(checkpoint, tmp_path,
                                                                            capsys):
    out = str(tmp_path / "o")
    train = ["train", "--backend", "torch", "--task", "reverse", "--epochs", "1", "--no-val",
             "--out", out]
    for argv, holds in (
        ([*train, "--n", "10000000000"], "generating --n 10,000,000,000 question/answer pairs"),
        ([*train, "--n", "64", "--hidden-size", "100000"], "lower --hidden-size, --embedding-dim"),
        ([*train, "--n", "64", "--embedding-dim", "10000000"], "embedding 10000000"),
        ([*train, "--n", "64", "--epochs", "1000000"], "lower --n or --epochs"),
        (["answer", str(checkpoint), "--backend", "torch", "--beam", "1000000", "q"],
         "beam search with --beam 1,000,000 and --max-len 40 over 1 question of a model"),
        (["experiment", "thought-vector", "--lengths", "1,100000", "--out", out],
         "lower --steps or --lengths"),
        (["experiment", "thought-vector", "--hidden-sizes", "64,100000", "--out", out],
         "lower --hidden-sizes or --lengths"),
    ):
        line = cli_refusal(capsys, argv)
        assert "would need about" in line and holds in line, line
    assert not os.path.exists(out)


# ---- finding 6: one line, never a traceback ----

class ResourceExhaustedError(Exception):
    """TensorFlow's class, by name: the command line must not import TensorFlow to see it."""


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 40000000000 bytes."),
    ResourceExhaustedError("OOM when allocating tensor with shape[100000,100000]"),
    MemoryError(),
])
def test_6_a_frameworks_out_of_memory_error_is_the_one_out_of_memory_line(
        monkeypatch, capsys, error):
    def run(args):
        raise error

    monkeypatch.setattr("shared.app.commands.export.run", run)
    line = cli_refusal(capsys, ["export", "m.safetensors", "--out", "o"])
    assert line.startswith("seq2seq-rosetta: error: out of memory") and "--hidden-size" in line


def test_6_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def run(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("shared.app.commands.export.run", run)
    assert main(["export", "m.safetensors", "--out", "o"]) == 130
    out, err = capsys.readouterr()
    assert err.strip() == "seq2seq-rosetta: interrupted (Ctrl-C); nothing is left half written"
    assert "Traceback" not in err and out == ""


def _folder(checkpoint, tmp_path):
    folder = tmp_path / "onnx"
    assert main(["export", str(checkpoint), "--out", str(folder)]) == 0
    return folder


def _tamper(folder, edit):
    import onnx

    from shared.onnx.export import graph_sha256

    path = folder / "decoder.onnx"
    model = onnx.load(path)
    edit(model)
    for entry in model.metadata_props:
        if entry.key == "graph_sha256":
            entry.value = graph_sha256(model)  # resealed: the checksum no longer tells
    path.write_bytes(model.SerializeToString())


def _weight_of_another_shape(model):
    from onnx import numpy_helper

    tensor = next(t for t in model.graph.initializer if len(t.dims) == 2)
    tensor.CopyFrom(numpy_helper.from_array(np.ones((3, 2), np.float32), tensor.name))


def _deep_config(model):
    for entry in model.metadata_props:
        if entry.key == "config":
            entry.value = "[" * 100_000 + "]" * 100_000


FOLDERS = {
    "a symlink loop": (lambda f: _loop(f / "encoder.onnx"), "too many levels of symbolic links"),
    "a FIFO": (lambda f: _fifo(f / "encoder.onnx"), "is a FIFO (named pipe)"),
    "/dev/zero": (lambda f: _link(f / "encoder.onnx", "/dev/zero"), "is a symlink to a character "
                                                                    "device"),
    "3 GiB": (lambda f: os.truncate(f / "encoder.onnx", 3 << 30), "is 3221225472 bytes"),
    "a resealed weight of another shape": (lambda f: _tamper(f, _weight_of_another_shape),
                                           "ONNX Runtime cannot run its models"),
    "a resealed deep config": (lambda f: _tamper(f, _deep_config),
                               "metadata 'config' nests JSON deeper than 64 levels"),
}


def _loop(path):
    path.unlink()
    path.symlink_to(path)


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def _link(path, target):
    path.unlink()
    path.symlink_to(target)


@pytest.mark.parametrize("case", list(FOLDERS))
def test_6_an_export_folder_that_is_not_what_it_claims_is_one_onnx_model_error(
        checkpoint, tmp_path, case):
    onnx_impl = pytest.importorskip("onnx_impl")
    from shared.onnx.export import OnnxModelError

    folder = _folder(checkpoint, tmp_path)
    edit, holds = FOLDERS[case]
    edit(folder)
    message, used = hf.peak(lambda: refusal(lambda: onnx_impl.load_model(folder), OnnxModelError,
                                            holds))
    assert isinstance(message, str) and "\n" not in message, message
    assert used < 64 << 20


# ---- finding 7: messages that name the file and say what to do ----

def test_7_an_os_error_without_a_file_never_ends_in_none(monkeypatch, capsys):
    def run(args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("shared.app.commands.export.run", run)
    line = cli_refusal(capsys, ["export", "m.safetensors", "--out", "o"])
    assert line == ("seq2seq-rosetta: error: Input/output error; the device failed to read or "
                    "write; check the file and the disk"), line


def test_7_experiment_out_and_answer_on_a_folder_are_refused_before_any_work(
        checkpoint, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    line = cli_refusal(capsys, ["experiment", "thought-vector", "--out", afile])
    assert "--out" in line and "is a file, not a directory" in line
    line = cli_refusal(capsys, ["answer", tmp_path, "--backend", "onnx", "q"])
    assert "is a directory, not a checkpoint file; answer reads the checkpoint itself" in line


@pytest.mark.parametrize("engine", ["torch_impl", "keras_impl"])
def test_7_a_run_that_diverges_on_its_only_step_says_so(engine):
    backend = pytest.importorskip(engine)
    config = Seq2SeqConfig(9, 9, 3, 4)
    model = backend.build_model(config, seed=0)
    batch = Batch(np.array([[5, 6, 7]]), np.array([[BOS, 5, PAD]]), np.array([[5, EOS, PAD]]))
    refusal(lambda: backend.train(model, [batch], epochs=1, lr=1e308, verbose=False),
            TrainingDivergedError,
            "training diverged at step 1, the last: its update left weights that are NaN or "
            "inf, with lr 1e+308; lower the learning rate (--lr on the command line)")
