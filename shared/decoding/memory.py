"""The decoder's memory: what an attending decoder reads besides its state, and its checks.

The memory is what the decoder needs besides the state, ``Memory(outputs, mask)``,
returned by ``encode(model, src, return_memory=True)`` and passed to
``decode(model, tgt_in, state, memory)``.  Generation carries it next to the
state, and beam search reorders it with the state (``Memory.take``).

A model without attention has an empty memory (``empty_memory``: outputs (B, S, 0)),
so that every engine returns one and the same calls suit every model.

``check_decoder_inputs`` and ``check_attention_inputs`` check ``decode``'s and
``attention_weights``' arguments once for every engine, so all of them refuse bad
input with the same words.  The equations are in ``shared.layout.attention``.

Shape legend: B batch, S source length, T target length, H_dec = D*H decoder hidden.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from shared.core.config import Seq2SeqConfig
from shared.core.inputs import check_batch_sizes, check_state, check_token_ids
from shared.core.tokens import PAD


class Memory(NamedTuple):
    """What an attending decoder reads besides its state: the encoder's outputs and the mask.

    Attributes:
        outputs: float32 (B, S, H_dec), the top encoder layer's output at every
            source position, [forward, backward] side by side; zeros at PAD.
        mask: bool (B, S), True at the real (non-PAD) source tokens.
    """

    outputs: np.ndarray
    mask: np.ndarray

    def take(self, index: np.ndarray) -> Memory:
        """The rows ``index`` along the batch axis (beam search copies and reorders rows)."""
        return Memory(np.take(self.outputs, index, axis=0), np.take(self.mask, index, axis=0))


def empty_memory(src: np.ndarray) -> Memory:
    """The memory of a model without attention: no outputs to read, (B, S, 0), and the mask.

    Its decoder reads no memory, but ``encode(model, src, return_memory=True)`` gives
    one on every engine and every model, so that one call, ``decode(model, tgt_in,
    state, memory)``, suits them all.
    """
    src = np.asarray(src)
    return Memory(np.zeros((*src.shape, 0), np.float32), src != PAD)          # (B, S, 0), (B, S)


def check_attention_memory(memory: object, batch_size: int, hidden_size: int) -> Memory:
    """Checks a memory given from outside, before any framework sees it.

    Args:
        memory: a ``Memory`` (or a pair ``(outputs, mask)``), e.g. from
            ``encode(model, src, return_memory=True)``.
        batch_size: B, the batch the decoder input has.
        hidden_size: H_dec.

    Returns:
        ``Memory(outputs float32 (B, S, H_dec), mask bool (B, S))``, C-contiguous.

    Raises:
        ValueError: not a pair, a wrong shape, non-finite outputs, or a mask that is
            not booleans (or 0/1).
    """
    if not isinstance(memory, (tuple, list)) or len(memory) != 2:
        raise ValueError(
            "memory must be a Memory(outputs, mask) from encode(model, src, return_memory=True):"
            f" outputs (B, S, {hidden_size}), mask (B, S); got {type(memory).__name__}"
        )
    outputs, mask = (np.asarray(part) for part in memory)
    if not (np.issubdtype(outputs.dtype, np.floating) or np.issubdtype(outputs.dtype, np.integer)):
        raise ValueError(f"memory outputs must hold real numbers; got {outputs.dtype}")
    if outputs.ndim != 3 or outputs.shape[0] != batch_size or outputs.shape[2] != hidden_size:
        raise ValueError(
            f"memory outputs has shape {outputs.shape}; expected ({batch_size}, S, {hidden_size})"
            " = (batch, source length, decoder hidden)"
        )
    if mask.shape != outputs.shape[:2]:
        raise ValueError(
            f"memory mask has shape {mask.shape}; expected {outputs.shape[:2]} = (batch, source "
            "length), like its outputs"
        )
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.integer):
            raise ValueError(f"memory mask must hold booleans (or 0/1); got {mask.dtype}")
        other = mask[~np.isin(mask, (0, 1))]
        if other.size:
            raise ValueError(
                f"memory mask must hold booleans (or 0/1); got {mask.dtype} holding {other[0]}"
            )
        mask = mask.astype(bool)
    with np.errstate(over="ignore"):
        outputs = np.ascontiguousarray(outputs, dtype=np.float32)  # (B, S, H_dec)
    if not np.isfinite(outputs).all():
        raise ValueError("memory outputs holds NaN/inf; encoder outputs must be finite")
    return Memory(outputs, np.ascontiguousarray(mask))


def check_decoder_inputs(config: Seq2SeqConfig, tgt_in, state, memory):
    """``decode``'s arguments checked, the same in every backend: ``(tgt_in, state, memory)``.

    The memory is checked only where the model reads it (None without attention).

    Raises:
        ValueError: a bad tgt_in or state (``shared.core.inputs``), a missing memory with
            attention, or a bad one (``check_attention_memory``).
    """
    tgt_in, _ = check_token_ids(tgt_in, config.tgt_vocab_size, "tgt_in", "target")  # (B, T)
    state = check_state(state, config.num_layers, tgt_in.shape[0], config.decoder_hidden_size,
                        cell=config.cell)                                      # each (L, B, H_dec)
    if not config.has_attention:
        return tgt_in, state, None
    if memory is None:
        raise ValueError(
            f"this model has {config.attention} attention: decode needs memory, the Memory that "
            "encode(model, src, return_memory=True) returns beside the state"
        )
    memory = check_attention_memory(memory, tgt_in.shape[0], config.decoder_hidden_size)
    return tgt_in, state, memory


def check_attention_inputs(config: Seq2SeqConfig, src, tgt_in):
    """``attention_weights``'s arguments checked, the same in every backend: ``(src, tgt_in)``.

    Raises:
        ValueError: a model without attention, bad ids, or batch sizes that differ.
    """
    if not config.has_attention:
        raise ValueError("this model has no attention (config.attention is 'none')")
    src, _ = check_token_ids(src, config.src_vocab_size, "src", "source")            # (B, S)
    tgt_in, _ = check_token_ids(tgt_in, config.tgt_vocab_size, "tgt_in", "target")  # (B, T)
    check_batch_sizes(src, tgt_in)
    return src, tgt_in
