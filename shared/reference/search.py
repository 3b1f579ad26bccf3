"""Beam search over the float64 reference: the tokens every engine's ``beam_decode`` must give.

The search itself is ``shared.decoding.search.beam_search``, the one every engine
runs; here it reads the reference's one-step decoder, so an engine's beam tokens
are checked against float64 logits (an engine's own step, in float32, could agree
with itself and still be wrong).  The greedy reference, ``greedy_decode`` in
``shared.reference.model``, is a loop written out by hand instead, so the engines'
greedy tokens, which come from the same search module, are held to code that shares
nothing with it.

Shapes: B batch, S source length, L layers, H_dec decoder hidden, N = B * K
hypotheses in a beam of K.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shared.core.config import Seq2SeqConfig
from shared.decoding.memory import Memory
from shared.decoding.search import beam_search
from shared.reference.model import decode, encode


def beam_decode(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray, beam_size: int,
    max_len: int,
) -> np.ndarray:
    """Beam search (length-normalised) on the reference: int64 (B, max_len), EOS kept, PAD after.

    The search carries (state, memory): it reorders each state part along its batch
    axis 1 and the memory (encoder outputs, source mask) along axis 0, so that each
    hypothesis keeps reading its own question.  Without attention the memory is
    empty and read by nobody, but it travels the same way.

    Args:
        weights: canonical dict.
        config: the model's sizes, cell and attention.
        src: (B, S) int source ids, post-padded with PAD.
        beam_size: K, hypotheses kept per row.
        max_len: tokens to produce per row (BOS is not among them).
    """

    def step(tokens, carried):
        state, memory = carried
        logits, state = decode(weights, config, tokens[:, None], state, memory)  # (N, 1, V_tgt)
        return logits[:, 0], (state, memory)

    def select(carried, index):
        state, memory = carried
        return tuple(np.take(part, index, axis=1) for part in state), Memory(*memory).take(index)

    carried = encode(weights, config, src, return_memory=True)              # (state, Memory)
    return beam_search(step, carried, len(src), beam_size, max_len, select=select)
