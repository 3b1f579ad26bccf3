"""The inference half of the API, written once: forward, attention weights, greedy and beam.

Every engine (``keras_impl``, ``torch_impl``, ``onnx_impl``, ...) has its own
``encode`` and ``decode``, and supplies four small hooks that keep its tensors
between generation steps (no copy to NumPy and back on every step); the rest,
the checks, the loop and the search, is the same for all of them and lives here:

    forward(src, tgt_in)            decode(tgt_in, *encode(src, return_memory=True))
    attention_weights(src, tgt_in)  the decoder's attention over the source, teacher-forced
    greedy_decode(src, max_len)     ``shared.decoding.search.greedy_search`` over the hooks
    beam_decode(src, K, max_len)    ``shared.decoding.search.beam_search`` over the hooks

Each engine's ``api.py`` defines these four public functions as one call each into
this module, with its ``Hooks``; their docstrings are there, where a user looks.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder
hidden, V_tgt target vocabulary, N = B * K hypotheses in a beam.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from shared.core.inputs import (
    check_batch_sizes,
    check_beam_size,
    check_max_len,
    check_source,
    check_token_ids,
)
from shared.decoding.memory import check_attention_inputs
from shared.decoding.search import beam_search, greedy_search


class Hooks(NamedTuple):
    """What an engine supplies, on its own tensors (``carried`` is (state, memory or None)).

    Attributes:
        encode: the engine's public ``encode(model, src, return_memory=False)``.
        decode: the engine's public ``decode(model, tgt_in, state, memory=None)``.
        start: ``start(model, src (B, S)) -> carried``: the hand-off, and the memory
            (None without attention), as the engine's tensors.
        step: ``step(model) -> fn(tokens (N,), carried) -> (logits (N, V_tgt) NumPy, carried)``.
        select: ``select(carried, index (N,)) -> carried``: rows picked along the batch
            (axis 1 of each state part, axis 0 of the memory), for beam search.
        attend: ``attend(model, tgt_in (B, T), state, memory) -> (B, T, S)`` NumPy:
            teacher-forced attention weights from checked NumPy inputs.
        running: ``running(model)``: a context for inference (dropout off, no
            gradients), or None where the engine needs none.
    """

    encode: Callable
    decode: Callable
    start: Callable
    step: Callable
    select: Callable
    attend: Callable
    running: Callable | None = None


def _running(hooks: Hooks, model: Any):
    return hooks.running(model) if hooks.running is not None else contextlib.nullcontext()


def forward(hooks: Hooks, model: Any, src, tgt_in) -> np.ndarray:
    """Teacher-forced logits (B, T, V_tgt): ``decode(tgt_in, encode(src))``."""
    cfg = model.config
    # Checked first: a list (or a bad array) has no batch size to compare yet.
    src, _ = check_token_ids(src, cfg.src_vocab_size, "src", "source")            # (B, S)
    tgt_in, _ = check_token_ids(tgt_in, cfg.tgt_vocab_size, "tgt_in", "target")  # (B, T)
    check_batch_sizes(src, tgt_in)
    logits, _ = hooks.decode(model, tgt_in, *hooks.encode(model, src, return_memory=True))
    return logits


def attention_weights(hooks: Hooks, model: Any, src, tgt_in) -> np.ndarray:
    """Teacher-forced attention weights, float32 (B, T, S); see the engines' docstrings."""
    src, tgt_in = check_attention_inputs(model.config, src, tgt_in)              # (B, S), (B, T)
    state, memory = hooks.encode(model, src, return_memory=True)
    if tgt_in.shape[1] == 0:  # no step, no weights
        return np.zeros((len(tgt_in), 0, memory.mask.shape[1]), np.float32)
    return hooks.attend(model, tgt_in, state, memory)                          # (B, T, S)


def greedy_decode(hooks: Hooks, model: Any, src, max_len: int) -> np.ndarray:
    """One-to-many generation: int64 (B, max_len), EOS kept, PAD after it."""
    max_len = check_max_len(max_len)
    src = check_source(src, model.config.src_vocab_size)                       # (B, S)
    with _running(hooks, model):
        return greedy_search(hooks.step(model), hooks.start(model, src), src.shape[0], max_len)


def beam_decode(hooks: Hooks, model: Any, src, beam_size: int, max_len: int) -> np.ndarray:
    """Beam search (length-normalised): int64 (B, max_len); beam_size=1 equals greedy."""
    beam_size, max_len = check_beam_size(beam_size), check_max_len(max_len)
    src = check_source(src, model.config.src_vocab_size)                       # (B, S)
    with _running(hooks, model):
        return beam_search(hooks.step(model), hooks.start(model, src), src.shape[0], beam_size,
                           max_len, select=hooks.select)
