"""A real training run on the command line: held-out figures, early stopping, resuming, evaluate.

Each command runs in-process through ``shared.app.cli.main``, on one tiny model and
task (``FLAGS``), trained a few epochs of ten steps:

- ``train`` writes history.json (one list per figure, one entry per epoch), loss.png,
  model.safetensors (the best epoch) and model-last.safetensors, both with the
  optimizer's state; ``--patience`` stops and keeps the best;
- ``--epochs 2`` then ``--resume ... --epochs 1`` gives the figures of ``--epochs 3``
  (the resumed run's history.json continues the first's), and a run moved from
  PyTorch to Keras and back gives PyTorch's own;
- the best epoch and --patience go on across a resume when the history is beside the
  checkpoint, and count from the resume, said in one line, when it is not;
- ``evaluate`` gives the same figures on every engine, and reproduces the held-out
  loss that ``train`` printed for the checkpoint's epoch;
- every bad flag is refused in one line before training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.app.cli import main
from shared.checkpoint import load_checkpoint, save_checkpoint
from shared.core.compare import ADAM_LOSS_ATOL
from tests.refusal import cli_refusal
from tests.support import ENGINES

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

FLAGS = ["--task", "addition", "--n", "160", "--val-split", "0.2", "--batch-size", "16",
         "--embedding-dim", "8", "--hidden-size", "16", "--lr", "0.05", "--clip-norm", "1"]


def _train(tmp_path, name, backend, *extra) -> dict:
    out = tmp_path / name
    assert main(["train", "--backend", backend, *FLAGS, *extra, "--out", str(out)]) == 0
    return json.loads((out / "history.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three epochs of PyTorch in one run, and the same as two epochs and a resumed one."""
    tmp_path = tmp_path_factory.mktemp("runs")
    histories = {"three": _train(tmp_path, "three", "torch", "--epochs", "3"),
                 "two": _train(tmp_path, "two", "torch", "--epochs", "2")}
    histories["resumed"] = _train(tmp_path, "resumed", "torch", "--epochs", "1", "--resume",
                                  str(tmp_path / "two" / "model-last.safetensors"))
    return tmp_path, histories


def test_history_holds_one_entry_per_epoch_of_every_figure(runs):
    folder, histories = runs
    history = histories["three"]
    assert history["epoch"] == [1, 2, 3] and history["held_out_pairs"] == 32
    for figure in ("loss", "val_loss", "exact_match", "token_accuracy", "bleu", "chrf"):
        assert len(history[figure]) == 3, figure
    assert history["steps"] == [10, 10, 10] and len(history["step_loss"]) == 30
    assert history["loss"][-1] < history["loss"][0], "training did not learn"
    assert "tok:char" in history["bleu_signature"] and "nc:6" in history["chrf_signature"]
    assert (folder / "three" / "loss.png").read_bytes().startswith(b"\x89PNG")
    best, last = (load_checkpoint(folder / "three" / name).training
                  for name in ("model.safetensors", "model-last.safetensors"))
    assert best.epochs_done == history["best_epoch"]
    assert history["val_loss"][best.epochs_done - 1] == min(history["val_loss"])
    # A task trains on all --n pairs (its held-out pairs are new ones): 10 steps an epoch.
    assert last.epochs_done == 3 and last.optimizer.step == 3 * 10
    assert last.optimizer.settings.clip_norm == 1.0


def test_two_epochs_then_one_resumed_equal_three(runs):
    """The resumed run's history holds the first run's two epochs and its own third."""
    _, histories = runs
    resumed, three = histories["resumed"], histories["three"]
    assert resumed["epoch"] == [1, 2, 3] and resumed["steps"] == three["steps"]
    assert resumed["resumes"] == [{"epoch": 3, "backend": "torch", "after": "torch"}]
    for figure in ("loss", "val_loss", "token_accuracy", "exact_match", "chrf", "step_loss"):
        np.testing.assert_allclose(resumed[figure], three[figure], atol=1e-6, err_msg=figure)
    assert resumed["best_epoch"] == three["best_epoch"]


def test_a_run_moves_to_keras_and_back_to_pytorch(runs, tmp_path):
    """One epoch in PyTorch, the second in Keras, the third in PyTorch again, each resuming the
    last one's checkpoint: the losses of three epochs in PyTorch (all start from one init)."""
    _, histories = runs
    three = histories["three"]
    _train(tmp_path, "first", "torch", "--epochs", "1")
    moved = {}
    for name, backend, resume in (("keras", "keras", "first"), ("back", "torch", "keras")):
        moved[name] = _train(tmp_path, name, backend, "--epochs", "1", "--resume",
                             str(tmp_path / resume / "model-last.safetensors"))
    for name, epoch in (("keras", 2), ("back", 3)):
        assert moved[name]["epoch"] == list(range(1, epoch + 1))
        steps = three["step_loss"][: 10 * epoch]
        worst = np.abs(np.array(moved[name]["step_loss"]) - steps).max()
        assert worst < ADAM_LOSS_ATOL, f"epoch {epoch} in {name}: {worst:.2e} from PyTorch's"
        np.testing.assert_allclose(moved[name]["val_loss"], three["val_loss"][:epoch],
                                   atol=ADAM_LOSS_ATOL)
    assert [r["backend"] for r in moved["back"]["resumes"]] == ["keras", "torch"]


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """(its folder, its history): a run of up to 12 epochs stopped by --patience 2."""
    tmp_path = tmp_path_factory.mktemp("patient")
    history = _train(tmp_path, "patient", "torch", "--epochs", "12", "--patience", "2")
    return tmp_path / "patient", history


def test_patience_stops_and_keeps_the_best_epoch(patient):
    folder, history = patient
    assert history["stopped_early"], f"no stop in 12 epochs: {history['val_loss']}"
    best = history["best_epoch"]
    assert len(history["epoch"]) == best + 2 < 12
    assert min(history["val_loss"]) == history["val_loss"][best - 1]
    assert load_checkpoint(folder / "model.safetensors").training.epochs_done == best
    assert load_checkpoint(folder / "model-last.safetensors").training.epochs_done == best + 2


def test_patience_and_the_best_go_on_across_a_resume(patient, tmp_path, capsys):
    """A run stopped by --patience 2 and resumed (with its history beside the checkpoint) has
    waited 2 epochs already: one more without a better held-out loss stops it, and the new
    folder's model.safetensors is the first run's best.  The same checkpoint alone in a
    folder starts the record at the resume, and says so."""
    folder, stopped = patient
    last = folder / "model-last.safetensors"
    resumed = _train(tmp_path, "more", "torch", "--epochs", "3", "--patience", "2",
                     "--resume", str(last))
    done = len(stopped["epoch"])
    assert f"continuing the record of epochs 1 to {done}, best epoch {stopped['best_epoch']}" in (
        capsys.readouterr().out)
    assert resumed["epoch"] == list(range(1, done + 2)) and resumed["stopped_early"]
    assert resumed["val_loss"][:done] == stopped["val_loss"]
    assert resumed["val_loss"][done] > min(stopped["val_loss"]), "the resumed epoch improved"
    assert resumed["best_epoch"] == stopped["best_epoch"]
    assert ((tmp_path / "more" / "model.safetensors").read_bytes()
            == (folder / "model.safetensors").read_bytes())
    alone = tmp_path / "alone" / "model-last.safetensors"
    alone.parent.mkdir()
    alone.write_bytes(last.read_bytes())
    fresh_record = _train(tmp_path, "from-alone", "torch", "--epochs", "1", "--patience", "2",
                          "--resume", str(alone))
    assert "no history.json beside it: history.json starts at epoch" in capsys.readouterr().out
    assert fresh_record["epoch"] == [done + 1] and not fresh_record["stopped_early"]
    assert fresh_record["val_loss"] == resumed["val_loss"][done:]


def test_evaluate_gives_the_same_figures_on_every_engine(runs, capsys):
    """Greedy tokens agree, so exact match, BLEU and chrF are equal; the loss is train's."""
    folder, histories = runs
    path = folder / "three" / "model.safetensors"
    found = {}
    for engine in ENGINES:
        name = engine.removesuffix("_impl")
        capsys.readouterr()
        assert main(["evaluate", str(path), "--backend", name, *FLAGS[:6], "--json"]) == 0
        found[name] = json.loads(capsys.readouterr().out)
    history = histories["three"]
    for name, figures in found.items():
        assert figures["pairs"] == 32
        for figure in ("exact_match", "bleu", "chrf", "token_accuracy"):
            assert figures[figure] == found["torch"][figure], (name, figure)
        assert figures["loss"] == pytest.approx(history["val_loss"][history["best_epoch"] - 1],
                                                abs=1e-5), name
    assert main(["evaluate", str(path), "--backend", "torch", *FLAGS[:6]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["held-out", "exact", "token", "BLEU", "chrF",
                                                   "pairs"]


RESUME = ["--epochs", "1", "--resume", "{last}"]
BAD_FLAGS = {
    "val-split-zero": (["--epochs", "1", "--val-split", "0"],
                       "argument --val-split: must be a number in (0, 1); got 0"),
    "val-split-one": (["--epochs", "1", "--val-split", "1"],
                      "argument --val-split: must be a number in (0, 1); got 1"),
    "val-split-small": (["--epochs", "1", "--val-split", "0.05"],
                        "--val-split 0.05 holds out 8 of 160 pairs, fewer than one batch "
                        "(--batch-size 16)"),
    "patience-no-val": (["--epochs", "1", "--patience", "2", "--no-val"],
                        "--patience needs a held-out set (it watches the held-out loss); "
                        "drop --no-val"),
    "clip-zero": (["--epochs", "1", "--clip-norm", "0"],
                  "argument --clip-norm: must be a positive finite number; got 0"),
    "clip-nan": (["--epochs", "1", "--clip-norm", "nan"],
                 "argument --clip-norm: must be a positive finite number; got nan"),
    "resume-not-a-checkpoint": (["--epochs", "1", "--resume", "{history}"],
                                "--resume: checkpoint "),
    "resume-other-size": ([*RESUME, "--hidden-size", "12"],
                          "was trained with --hidden-size 16; these flags give --hidden-size 12"),
    "resume-other-vocabulary": ([*RESUME, "--level", "word"],
                                "has a source vocabulary of 15 char tokens; these data flags "
                                "make 164 word tokens"),
    "resume-other-optimizer": ([*RESUME, "--optimizer", "sgd"],
                               "was trained with --optimizer adam; these flags give "
                               "--optimizer sgd"),
    # --lr given after FLAGS' 0.05 wins.
    "resume-other-lr": ([*RESUME, "--lr", "0.01"],
                        "was trained with --lr 0.05; these flags give --lr 0.01"),
    "fresh-without-resume": (["--epochs", "1", "--fresh-optimizer"],
                             "--fresh-optimizer goes with --resume"),
}


@pytest.mark.parametrize("bad", list(BAD_FLAGS))
def test_bad_training_flags_are_refused_in_one_line_before_training(runs, tmp_path, capsys, bad):
    folder, _ = runs
    argv, detail = BAD_FLAGS[bad]
    files = {"last": folder / "two" / "model-last.safetensors",
             "history": folder / "two" / "history.json"}
    argv = [arg.format(**files) for arg in argv]
    line = cli_refusal(capsys, ["train", "--backend", "torch", *FLAGS, *argv, "--out",
                                tmp_path / "out"])
    assert detail in line, line
    assert not (tmp_path / "out").exists(), "a refused train wrote output"


def test_a_checkpoint_without_optimizer_state_resumes_only_when_asked(runs, tmp_path, capsys):
    folder, histories = runs
    saved = load_checkpoint(folder / "two" / "model-last.safetensors")
    plain = tmp_path / "weights-only.safetensors"
    save_checkpoint(plain, saved.weights, saved.config, saved.src_tokenizer, saved.tgt_tokenizer)
    argv = ["train", "--backend", "torch", *FLAGS, "--epochs", "1", "--resume", str(plain),
            "--out", str(tmp_path / "out")]
    line = cli_refusal(capsys, argv)
    assert line.endswith(f"--resume {plain} holds no optimizer state (a checkpoint of weights "
                         "only); add --fresh-optimizer to continue from its weights with a "
                         "fresh optimizer"), line
    assert main([*argv, "--fresh-optimizer"]) == 0
    fresh = json.loads((tmp_path / "out" / "history.json").read_text())
    # Epoch 1 of a new schedule from the trained weights: not the resumed run's epoch 3.
    assert fresh["epoch"] == [1] and fresh["loss"][0] != histories["resumed"]["loss"][2]
