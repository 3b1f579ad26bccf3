"""A training run kept epoch by epoch: its figures, its best and its last checkpoint.

    record = RunRecord(out, backend, model, src_tok, tgt_tok, seed=0, batch_size=64,
                       held_out=pairs, patience=3)
    history = backend.train(model, ..., on_epoch_end=record.on_epoch_end)
    record.finish(history)            # history.json, complete

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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.checkpoint import TrainingState, save_checkpoint
from shared.files.atomic import write_atomically
from shared.text.tokenizer import Tokenizer
from shared.training.epochs import EarlyStopping, EpochEnd
from shared.training.evaluation import FIGURES, evaluate

BEST = "model.safetensors"
LAST = "model-last.safetensors"
HISTORY = "history.json"
# history.json's name for each figure of ``Metrics``: the held-out loss is val_loss, as
# Keras's History names it, beside the training loss.
HISTORY_NAMES = {"loss": "val_loss", **{figure: figure for figure in FIGURES[1:]}}


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
        say: prints one line.
    """

    def __init__(self, out: Path, backend: ModuleType, model: Any, src_tokenizer: Tokenizer,
                 tgt_tokenizer: Tokenizer, *, seed: int, batch_size: int,
                 held_out: Sequence[tuple[str, str]] | None = None, patience: int | None = None,
                 say: Callable[[str], None] = print):
        if patience is not None and not held_out:
            raise ValueError("patience needs held-out pairs: it watches the held-out loss")
        self.out, self.backend, self.model = Path(out), backend, model
        self.tokenizers = (src_tokenizer, tgt_tokenizer)
        self.seed, self.batch_size, self.held_out = seed, batch_size, held_out
        self.stopping = EarlyStopping(patience)
        self.say = say
        self.history: dict[str, Any] = {
            "backend": backend.NAME, "held_out_pairs": len(held_out) if held_out else 0,
            "epoch": [], "loss": [], **{name: [] for name in HISTORY_NAMES.values()},
            "best_epoch": None, "stopped_early": False,
        }

    def on_epoch_end(self, end: EpochEnd) -> bool:
        """Score, print, save; True when patience has run out."""
        number = end.epoch + 1  # epochs as people count them
        self.history["epoch"].append(number)
        self.history["loss"].append(end.loss)
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
        self.history["stopped_early"] = stop
        self.say(line + (" (best so far)" if improved and self.held_out else ""))
        self.write_history()
        return stop

    def finish(self, trained: dict) -> dict:
        """Add the trainer's per-step losses, write history.json, and return the history."""
        self.history["step_loss"] = trained["loss"]
        self.write_history()
        return self.history

    def write_history(self) -> None:
        write_atomically(self.out / HISTORY, json.dumps(self.history, indent=2).encode("utf-8"))
