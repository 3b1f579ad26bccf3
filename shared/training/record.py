"""A training run kept epoch by epoch: its figures, its best and its last checkpoint.

    record = RunRecord(out, backend, model, src_tok, tgt_tok, seed=0, batch_size=64,
                       held_out=pairs, patience=3)
    history = backend.train(model, ..., on_epoch_end=record.on_epoch_end)
    record.finish()                   # history.json, complete

After each epoch ``on_epoch_end`` scores the model on the held-out pairs
(``shared.training.evaluation``), prints one line, and saves the epoch's
checkpoint with its training state (``train --resume`` continues from either):

    model-last.safetensors   the last epoch, always (with a held-out set)
    model.safetensors        the epoch of the lowest held-out loss so far: the best
                             (without a held-out set: the last)
    history.json             one list per figure, one entry per epoch, rewritten each
                             epoch, so an interrupted run keeps what it measured

It returns True (stop) once ``patience`` epochs have passed without a lower
held-out loss (``EarlyStopping``).  Every file is written whole or not at all
(``shared.files.atomic``).

A resumed run continues the record of the run it resumes, read from the
history.json beside the checkpoint (``earlier_record``): its history up to the
checkpoint's epoch, its best held-out loss and the epochs since (so --patience
and the best count over the whole run), and its best checkpoint, written into
``out`` until a better epoch replaces it.  Without that file the record starts
at the resume.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from shared.checkpoint import (
    Checkpoint,
    CheckpointError,
    TrainingState,
    load_checkpoint,
    save_checkpoint,
)
from shared.files.atomic import write_atomically
from shared.files.limits import MAX_JSON_BYTES
from shared.files.safe import FileRefusedError, loads, read_regular
from shared.text.tokenizer import Tokenizer
from shared.training.epochs import EarlyStopping, EpochEnd
from shared.training.evaluation import FIGURES, evaluate

BEST = "model.safetensors"
LAST = "model-last.safetensors"
HISTORY = "history.json"
# history.json's name for each figure of ``Metrics``: the held-out loss is val_loss, as
# Keras's History names it, beside the training loss.
HISTORY_NAMES = {"loss": "val_loss", **{figure: figure for figure in FIGURES[1:]}}
# The lists with one entry per epoch: the epoch's number, training loss, optimizer steps.
EPOCH_LISTS = ("epoch", "loss", "steps")


class Earlier(NamedTuple):
    """The part of a run that its resumed run continues (``earlier_record``).

    Attributes:
        history: its history.json up to the checkpoint's epoch, best_epoch recomputed.
        best: the bytes of its best epoch's checkpoint; None without a held-out set.
    """

    history: dict
    best: bytes | None


def earlier_record(resume: Path, checkpoint: Checkpoint, held_out_pairs: int
                   ) -> tuple[Earlier | None, str]:
    """The record of the run whose checkpoint ``resume`` is, from the history.json beside it.

    Args:
        resume: the checkpoint's path; ``checkpoint``, it loaded (with a training state).
        held_out_pairs: how many pairs the resumed run holds out (0: none).

    Returns:
        (Earlier, "") or (None, why there is none): no history.json beside the
        checkpoint, one of another run (other held-out pairs, fewer epochs than the
        checkpoint's), or a best epoch whose checkpoint is not beside it.
    """
    done = checkpoint.training.epochs_done
    path = Path(resume).parent / HISTORY
    if not path.is_file():
        return None, f"no {HISTORY} beside it"
    try:  # a file beside a checkpoint someone gave: the strict JSON of every reader
        history = loads(read_regular(path, HISTORY, MAX_JSON_BYTES), path, MAX_JSON_BYTES)
    except (OSError, FileRefusedError) as error:
        return None, f"{path} is not readable JSON ({getattr(error, 'reason', error)})"
    why = _not_this_run(history, done, held_out_pairs)
    if why:
        return None, f"{path} {why}"
    steps = sum(history["steps"][:done])
    resumes = history.get("resumes") if isinstance(history.get("resumes"), list) else []
    kept = {**history, **{name: history[name][:done] for name in EPOCH_LISTS},
            **{name: history[name][:done] for name in HISTORY_NAMES.values()},
            "step_loss": history["step_loss"][:steps], "stopped_early": False,
            "resumes": [entry for entry in resumes if isinstance(entry, dict)
                        and type(entry.get("epoch")) is int and entry["epoch"] <= done]}
    if not held_out_pairs:
        return Earlier({**kept, "best_epoch": done}, None), ""
    stopping = EarlyStopping()
    for loss in kept["val_loss"]:
        stopping.update(loss)
    best_epoch = stopping.best_epoch + 1
    best_path = Path(resume) if best_epoch == done else Path(resume).parent / BEST
    try:
        best = load_checkpoint(best_path)
    except (CheckpointError, OSError):
        best = None
    if (best is None or best.training is None or best.training.epochs_done != best_epoch
            or best.config != checkpoint.config):
        return None, f"the best epoch's ({best_epoch}) checkpoint is not {best_path}"
    return Earlier({**kept, "best_epoch": best_epoch}, best_path.read_bytes()), ""


def _not_this_run(history: object, done: int, held_out_pairs: int) -> str:
    """Why a parsed history.json is not the record of ``done`` epochs or more; "" when it is."""
    if not isinstance(history, dict) or not isinstance(history.get("epoch"), list):
        return "is not a history.json of train"
    epochs = len(history["epoch"])
    if history["epoch"] != list(range(1, epochs + 1)) or epochs < done:
        return f"does not hold epochs 1 to {done} (the checkpoint's)"
    if history.get("held_out_pairs") != held_out_pairs:
        return (f"held out {history.get('held_out_pairs')} pairs; these flags hold out "
                f"{held_out_pairs}")
    figures = HISTORY_NAMES.values()
    lengths = {name: epochs if name in EPOCH_LISTS or held_out_pairs else 0
               for name in (*EPOCH_LISTS, *figures)}
    for name, length in lengths.items():
        values = history.get(name)
        kind = (lambda v: type(v) is int and v >= 0) if name == "steps" else (
            lambda v: type(v) in (int, float))
        if not (isinstance(values, list) and len(values) == length and all(map(kind, values))):
            return f"has no list {name!r} of {length} numbers"
    step_loss = history.get("step_loss")
    if not isinstance(step_loss, list) or len(step_loss) != sum(history["steps"]):
        return f"has no list 'step_loss' of {sum(history['steps'])} numbers (the steps')"
    return ""


class RunRecord:
    """The history and checkpoints of one run (see the module docstring).

    Args:
        out: the folder to write into; made at the first epoch's end.
        backend: the engine module training ``model`` (for export_weights, evaluation).
        model: the model being trained.
        src_tokenizer, tgt_tokenizer: its tokenizers.
        seed, batch_size: the run's, recorded in each checkpoint's training state.
        held_out: the held-out pairs, or None for no held-out set.
        patience: stop after this many epochs without a better held-out loss; None: never.
        earlier: the record a resumed run continues (``earlier_record``); None: a new one.
        say: prints one line.
    """

    def __init__(self, out: Path, backend: ModuleType, model: Any, src_tokenizer: Tokenizer,
                 tgt_tokenizer: Tokenizer, *, seed: int, batch_size: int,
                 held_out: Sequence[tuple[str, str]] | None = None, patience: int | None = None,
                 earlier: Earlier | None = None, say: Callable[[str], None] = print):
        if patience is not None and not held_out:
            raise ValueError("patience needs held-out pairs: it watches the held-out loss")
        self.out, self.backend, self.model = Path(out), backend, model
        self.tokenizers = (src_tokenizer, tgt_tokenizer)
        self.seed, self.batch_size, self.held_out = seed, batch_size, held_out
        self.stopping = EarlyStopping(patience)
        self.say = say
        self.history: dict[str, Any] = {
            "backend": backend.NAME, "held_out_pairs": len(held_out) if held_out else 0,
            **{name: [] for name in (*EPOCH_LISTS, *HISTORY_NAMES.values(), "step_loss")},
            "best_epoch": None, "stopped_early": False, "resumes": [],
        }
        self._earlier_best = None  # the earlier best's file, written until an epoch beats it
        if earlier is not None:
            # The earlier epochs' held-out losses replayed: the same best and the same wait.
            for loss in earlier.history["val_loss"]:
                self.stopping.update(loss)
            self.history.update({name: earlier.history[name] for name in self.history
                                 if name in earlier.history and name != "backend"})
            self.history["resumes"] = [*self.history["resumes"], {
                "epoch": len(earlier.history["epoch"]) + 1, "backend": backend.NAME,
                "after": earlier.history.get("backend")}]
            self._earlier_best = earlier.best

    def on_epoch_end(self, end: EpochEnd) -> bool:
        """Score, print, save; True when patience has run out."""
        number = end.epoch + 1  # epochs as people count them
        for name, value in zip(EPOCH_LISTS, (number, end.loss, len(end.step_losses)),
                               strict=True):
            self.history[name].append(value)
        self.history["step_loss"] += end.step_losses
        line = f"epoch {number}: loss {end.loss:.4f}"
        improved, stop = True, False  # without a held-out set the last epoch is the model
        if self.held_out:
            metrics = evaluate(self.backend, self.model, self.held_out, *self.tokenizers,
                               batch_size=self.batch_size)
            for figure, name in HISTORY_NAMES.items():
                self.history[name].append(getattr(metrics, figure))
            self.history["bleu_signature"] = metrics.bleu_signature
            self.history["chrf_signature"] = metrics.chrf_signature
            line += f", {metrics.line()}"
            improved, stop = self.stopping.update(metrics.loss)
        self.out.mkdir(parents=True, exist_ok=True)
        training = TrainingState(number, self.seed, self.batch_size, end.optimizer_state())
        weights = self.backend.export_weights(self.model)
        if self.held_out:
            save_checkpoint(self.out / LAST, weights, self.model.config, *self.tokenizers,
                            training=training)
        if improved:
            save_checkpoint(self.out / BEST, weights, self.model.config, *self.tokenizers,
                            training=training)
            self.history["best_epoch"] = number
        elif self._earlier_best is not None:  # out may be a new folder: the best goes there too
            write_atomically(self.out / BEST, self._earlier_best)
        self._earlier_best = None
        self.history["stopped_early"] = stop
        self.say(line + (" (best so far)" if improved and self.held_out else ""))
        self.write_history()
        return stop

    def finish(self) -> dict:
        """Write history.json once more and return the history."""
        self.write_history()
        return self.history

    def write_history(self) -> None:
        write_atomically(self.out / HISTORY, json.dumps(self.history, indent=2).encode("utf-8"))
