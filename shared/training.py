"""Argument checks and batch handling shared by both backends' ``train``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from shared.config import Seq2SeqConfig
from shared.data import Batch
from shared.inputs import check_batch_sizes, check_source, check_token_ids

OPTIMIZERS = ("adam", "sgd")


def check_training_args(epochs, optimizer, lr, adam_epsilon) -> None:
    """Refuse bad training settings with a message that names the argument."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1; got {epochs!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    # inf passes `> 0` but turns every weight into NaN on the first step, silently.
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive finite number; got {lr!r}")
    if adam_epsilon is not None and not (
        isinstance(adam_epsilon, float) and 0 < adam_epsilon < math.inf
    ):
        raise ValueError(
            f"adam_epsilon must be a positive finite float or None; got {adam_epsilon!r}"
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
    batches: Iterable[Batch] | Callable[[int], Iterable[Batch]], epochs: int
) -> list[list[Batch]]:
    """Each epoch's batches, checked before the first step.

    Args:
        batches: either the batches themselves (an iterator is read once and every
            epoch replays them), or a function of the epoch number (0, 1, ...)
            returning that epoch's batches, e.g. a new shuffle each epoch:
            ``lambda epoch: shared.batches(pairs, src_tok, tgt_tok, 64, seed=epoch)``.
        epochs: how many epochs.
    """
    if callable(batches):
        schedule = [list(batches(epoch)) for epoch in range(epochs)]
    else:
        schedule = [list(batches)] * epochs
    for epoch, epoch_batches in enumerate(schedule):
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
