"""Argument checks and batch handling shared by both backends' ``train``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from shared.checkpoint.training_state import (
    MAX_COUNT,
    OptimizerSettings,
    OptimizerState,
    check_optimizer_state,
    optimizer_settings,
)
from shared.core.checks import check_count, check_seed
from shared.core.config import Seq2SeqConfig
from shared.core.inputs import check_batch_sizes, check_source, check_token_ids
from shared.text.data import Batch


class TrainingDivergedError(RuntimeError):
    """The loss stopped being a finite number: the weights have run off to NaN or inf."""


class TrainingRun(NamedTuple):
    """A ``train`` call's settings, checked (``check_training_args``).

    Attributes:
        epochs: the epochs to run now.
        seed: seeds the dropout (a resumed run's stream restarts at seed + first_epoch).
        settings: the optimizer (``shared.checkpoint.OptimizerSettings``).
        first_epoch: the first epoch's number in the whole run (0, or the epochs a
            resumed run has done): ``batches(epoch)`` is asked for these numbers.
        state: the optimizer's state to start from, checked against the settings and
            the model's config; None starts fresh.
    """

    epochs: int
    seed: int
    settings: OptimizerSettings
    first_epoch: int
    state: OptimizerState | None


def check_training_args(
    epochs, optimizer, lr, adam_epsilon, seed=0, *, clip_norm=None, first_epoch=0,
    optimizer_state=None, config: Seq2SeqConfig | None = None,
) -> TrainingRun:
    """Refuse bad training settings with a message that names the argument.

    NumPy scalars (``np.int64(3)``, ``np.float32(0.01)``) are taken where Python
    numbers are, and come back as Python numbers, so that a history holds plain
    values (JSON can write them) and both frameworks see the same types.
    ``adam_epsilon`` None is ``ADAM_EPSILON`` (1e-8) on both: one update rule
    (``keras_impl.optimizer``).

    Returns:
        A ``TrainingRun``.
    """
    epochs = check_count(epochs, "epochs")
    settings = optimizer_settings(optimizer, lr, adam_epsilon, clip_norm)
    seed = check_seed(seed)
    first_epoch = check_count(first_epoch, "first_epoch", 0, MAX_COUNT)
    if optimizer_state is not None:
        optimizer_state = check_optimizer_state(optimizer_state, config)
        differences = optimizer_state.settings.differences(settings)
        if differences:
            field, theirs, ours = differences[0]
            raise ValueError(f"optimizer_state has {field} {theirs!r} but train was given "
                             f"{ours!r}; resume with the settings the state was made with")
    return TrainingRun(epochs, seed, settings, first_epoch, optimizer_state)


def check_finite_loss(loss: float, step: int, lr: float) -> None:
    """Stops training at the first step whose loss is NaN or inf.

    Once a step has pushed the weights to inf (a learning rate far too large, say
    1e308), every later loss is NaN and the weights stay NaN: training on would
    only waste time and end in a checkpoint that no loader accepts.

    Args:
        loss: this step's loss.
        step: its number, counting from 1.
        lr: the learning rate, for the message.

    Raises:
        TrainingDivergedError: the loss is not finite.
    """
    if not math.isfinite(loss):
        raise TrainingDivergedError(
            f"training diverged at step {step}: the loss is {loss} (not finite) with lr {lr:g}; "
            "lower the learning rate (--lr on the command line)"
        )


def check_finite_weights(weights: Iterable[tuple[str, np.ndarray]], steps: int,
                         lr: float) -> None:
    """Stops training whose last update left a weight NaN or inf.

    ``check_finite_loss`` sees each step's loss before that step's update, so the
    update of the last step (the only one, in a run of one step) is seen by no
    loss: the trainers call this after their loop, and at each epoch's end before
    an ``on_epoch_end`` hook evaluates or saves the weights, so that such a run says
    it diverged rather than ending in a checkpoint no loader accepts.

    Args:
        weights: (name, array) for every weight, in any order.
        steps: how many steps ran.
        lr: the learning rate, for the message.

    Raises:
        TrainingDivergedError: a weight holds NaN or inf.
    """
    # The message names no weight: each framework names its own, and both backends
    # should refuse a diverged run in the same words.
    for _, value in weights:
        if not np.all(np.isfinite(value)):
            raise TrainingDivergedError(
                f"training diverged at step {steps}, the last: its update left weights that "
                f"are NaN or inf, with lr {lr:g}; lower the learning rate (--lr on the command "
                "line)"
            )


def check_training_batch(
    config: Seq2SeqConfig, src, tgt_in, tgt_out
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training batch checked for both backends: int64 (B, S), (B, T), (B, T).

    Besides the id checks, tgt_out must have a real token exactly where tgt_in
    has one (tgt_in = BOS + answer, tgt_out = answer + EOS: the same length).
    A target at a position where the decoder reads PAD would be scored on
    logits that are unspecified there, and the two frameworks would report
    different losses without an error.
    """
    src = check_source(src, config.src_vocab_size)                                   # (B, S)
    tgt_in, in_lengths = check_token_ids(
        tgt_in, config.tgt_vocab_size, "tgt_in", "target", allow_empty_rows=False
    )                                                                                 # (B, T)
    tgt_out, out_lengths = check_token_ids(tgt_out, config.tgt_vocab_size, "tgt_out", "target")
    check_batch_sizes(src, tgt_in)
    if tgt_out.shape != tgt_in.shape:
        raise ValueError(
            f"tgt_out has shape {tgt_out.shape} but tgt_in has {tgt_in.shape}; tgt_out is "
            "tgt_in shifted by one step (answer + EOS vs BOS + answer), the same shape"
        )
    rows = np.flatnonzero(in_lengths != out_lengths)
    if rows.size:
        row = int(rows[0])
        raise ValueError(
            f"tgt_out row {row} has {out_lengths[row]} real tokens but tgt_in row {row} has "
            f"{in_lengths[row]}; tgt_in = BOS + answer and tgt_out = answer + EOS have one length"
        )
    return src, tgt_in, tgt_out


def training_batches(
    batches: Iterable[Batch] | Callable[[int], Iterable[Batch]], epochs: int, first_epoch: int = 0
) -> list[list[Batch]]:
    """Each epoch's batches, checked before the first step.

    Args:
        batches: either the batches themselves (an iterator is read once and every
            epoch replays them), or a function of the epoch number (0, 1, ...)
            returning that epoch's batches, e.g. a new shuffle each epoch:
            ``lambda epoch: shared.batches(pairs, src_tok, tgt_tok, 64, seed=epoch)``.
        epochs: how many epochs.
        first_epoch: the number of the first (a resumed run's epochs go on from where
            it stopped, and so do their shuffles).
    """
    if callable(batches):
        schedule = [list(batches(epoch)) for epoch in range(first_epoch, first_epoch + epochs)]
    else:
        schedule = [list(batches)] * epochs
    for epoch, epoch_batches in enumerate(schedule, start=first_epoch):
        if not epoch_batches:
            raise ValueError(f"batches is empty for epoch {epoch}; give at least one shared.Batch")
        for i, batch in enumerate(epoch_batches):
            if not isinstance(batch, Batch):
                raise ValueError(
                    f"batches[{i}] must be a shared.Batch; got {type(batch).__name__}"
                )
    return schedule


def epoch_means(losses: list[float], schedule: list[list[Batch]]) -> list[float]:
    """The mean loss of each epoch, from per-step losses."""
    means, start = [], 0
    for epoch_batches in schedule:
        means.append(sum(losses[start : start + len(epoch_batches)]) / len(epoch_batches))
        start += len(epoch_batches)
    return means


def run_history(backend: str, run: TrainingRun, losses: list[float],
                done: list[list[Batch]]) -> dict:
    """What ``train`` returns, on either framework and any number of replicas.

    Args:
        backend: "keras" or "torch".
        run: the checked arguments (``check_training_args``).
        losses: every step's loss, in order.
        done: the epochs' batches that were trained (fewer than asked when stopped early).
    """
    return {
        "backend": backend,
        "optimizer": run.settings.name,
        "lr": run.settings.lr,
        "epochs": run.epochs,
        "first_epoch": run.first_epoch,
        "epochs_run": len(done),
        "loss": losses,
        "epoch_loss": epoch_means(losses, done),
    }


def share_bias_gradients(gradients: dict, config: Seq2SeqConfig) -> dict:
    """For an LSTM, give every b_hh the gradient of its b_ih, in place; return the dict.

    An LSTM's loss depends on the two biases only through their sum b_ih + b_hh,
    so their gradients are equal.  Both backends train a single LSTM bias per gate
    (Keras has only one; torch_impl freezes bias_hh) and report its gradient under
    both canonical names.  A GRU is left as it is: its b_hn acts inside
    r * (W_hn h + b_hn), apart from b_in, so the two biases have gradients of their
    own, and both frameworks train both.
    """
    if config.cell != "lstm":
        return gradients
    for key in gradients:
        if key.endswith(".b_hh"):
            gradients[key] = gradients[key[: -len("b_hh")] + "b_ih"].copy()
    return gradients
