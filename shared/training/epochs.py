"""What happens between two epochs: the trainers' hook, and early stopping.

Both trainers (``keras_impl.train``, ``torch_impl.train``) call
``on_epoch_end(EpochEnd(...))`` after each epoch, with the model's weights in
place and dropout off (ready to evaluate or save), and stop when it returns True:

    def on_epoch_end(end: EpochEnd) -> bool:
        metrics = evaluate(backend, model, held_out, src_tok, tgt_tok)
        improved, stop = stopping.update(metrics.loss)
        if improved:
            save(model, end.optimizer_state())     # the state after this epoch
        return stop

``EarlyStopping`` is the rule ``train --patience K`` keeps: stop once the held-out
loss has not improved for K epochs in a row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from shared.checkpoint.training_state import OptimizerState
from shared.core.checks import check_count


@dataclass(frozen=True)
class EpochEnd:
    """The end of one epoch, as a trainer reports it.

    Attributes:
        epoch: its number in the whole run, from 0 (a resumed run goes on counting).
        loss: the mean of its steps' training losses.
        step_losses: each of its steps' training loss, in order.
        step: the optimizer steps taken in the whole run, this epoch's included.
        optimizer_state: the optimizer's state now, exported when called (a neutral
            ``OptimizerState``: what a checkpoint stores to resume from here).
    """

    epoch: int
    loss: float
    step_losses: tuple[float, ...]
    step: int
    optimizer_state: Callable[[], OptimizerState]


class EarlyStopping:
    """Stop when the held-out loss has not improved for ``patience`` epochs in a row.

    ``update(loss)`` after each epoch returns ``(improved, stop)``: improved when the
    loss is below every earlier one (the epoch whose weights to keep as the best),
    stop once ``patience`` epochs have passed without that.  None as patience never stops.
    """

    def __init__(self, patience: int | None = None):
        self.patience = None if patience is None else check_count(patience, "patience")
        self.best = math.inf
        self.best_epoch: int | None = None
        self.waited = 0
        self._epoch = -1

    def update(self, loss: float) -> tuple[bool, bool]:
        self._epoch += 1
        improved = loss < self.best
        if improved:
            self.best, self.best_epoch, self.waited = loss, self._epoch, 0
        else:
            self.waited += 1
        return improved, self.patience is not None and self.waited >= self.patience
