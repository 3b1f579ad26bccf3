"""The inference API of an engine whose model computes on NumPy arrays, written once.

ONNX Runtime (``onnx_impl``), LiteRT (``litert_impl``) and ExecuTorch (``executorch_impl``)
each hold a model with two methods on checked NumPy inputs,

    model.encode(src (B, S), return_memory, initial_state) -> state [, Memory]
    model.decode(tgt_in (B, T), state, memory, return_attention=False)
        -> logits (B, T, V_tgt), state [, weights (B, T, S)]

and differ in nothing else the API sees: no tensors to convert between generation
steps, no inference mode to enter.  So their public ``encode``, ``decode``, ``forward``,
``attention_weights``, ``greedy_decode`` and ``beam_decode`` are these, each engine's
``api`` module importing them beside its own ``load_model``; the search itself is
``shared.decoding.inference`` over ``HOOKS``.  ``keras_impl`` and ``torch_impl`` write
theirs over their own tensors.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden,
V_tgt target vocabulary, N = B * K hypotheses in a beam.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.core.inputs import check_initial_state, check_source
from shared.decoding import inference
from shared.decoding.memory import check_decoder_inputs


def encode(model: Any, src, return_memory: bool = False, initial_state=None):
    """The hand-off, (h, c) or (h,), float32 NumPy, each (L, B, H_dec); all-PAD rows give zeros.

    With ``return_memory``, (state, memory): ``Memory(outputs (B, S, H_dec) float32,
    zeros at PAD, mask (B, S) bool)``, what attention reads; a model without attention
    gives an empty one (outputs (B, S, 0), ``shared.decoding.memory.empty_memory``).

    Streaming: ``initial_state``, the state a previous chunk's ``encode`` returned,
    continues from it, so that chunk after chunk ends where the whole source would
    (the memories, concatenated along S, are the whole source's); a row of only PAD
    keeps it.  A bidirectional encoder cannot stream and refuses it.
    """
    src = check_source(src, model.config.src_vocab_size)                       # (B, S)
    initial_state = check_initial_state(initial_state, model.config, len(src))
    return model.encode(src, return_memory, initial_state)                    # each (L, B, H_dec)


def decode(model: Any, tgt_in, state, memory=None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Decoder logits (B, T, V_tgt) and final state from ``state``; T = 1 is one step.

    ``memory``, from ``encode(model, src, return_memory=True)``, is needed with
    attention and not read without.  Logits at PAD positions of ``tgt_in`` are
    unspecified (a PAD token keeps its row's state).
    """
    cfg = model.config
    tgt_in, state, memory = check_decoder_inputs(cfg, tgt_in, state, memory)
    if tgt_in.shape[1] == 0:  # no step to take: no logits, and the state stays as given
        logits = np.zeros((tgt_in.shape[0], 0, cfg.tgt_vocab_size), np.float32)
        return logits, tuple(part.copy() for part in state)
    return model.decode(tgt_in, state, memory)                                 # (B, T, V_tgt)


def _start(model: Any, src: np.ndarray):
    """What generation carries: (the hand-off, the memory or None without attention)."""
    state, memory = model.encode(src, return_memory=True)                     # each (L, B, H_dec)
    return state, (memory if model.config.has_attention else None)


def _step_fn(model: Any):
    """One generation step on arrays: feed one token per row, carry the state and memory."""

    def step(tokens: np.ndarray, carried):
        state, memory = carried
        logits, state = model.decode(tokens[:, None], state, memory)           # (N, 1, V_tgt)
        return logits[:, 0], (state, memory)                                   # each (L, N, H_dec)

    return step


def _select(carried, index: np.ndarray):
    """Pick hypotheses along the batch: axis 1 of each state part, axis 0 of the memory.

    Beam search copies each row to its K places and reorders them every step; the
    memory (with attention) must follow its rows, or a hypothesis would read
    another question.
    """
    state, memory = carried
    state = tuple(np.take(part, index, axis=1) for part in state)             # each (L, N, H_dec)
    return state, (None if memory is None else memory.take(index))  # (N, S, H_dec), (N, S)


def _attend(model: Any, tgt_in: np.ndarray, state, memory) -> np.ndarray:
    """Teacher-forced attention weights (B, T, S) from checked NumPy inputs."""
    return model.decode(tgt_in, state, memory, return_attention=True)[2]      # (B, T, S)


HOOKS = inference.Hooks(encode, decode, _start, _step_fn, _select, _attend)


def forward(model: Any, src, tgt_in) -> np.ndarray:
    """Teacher-forced logits (B, T, V_tgt): ``decode(tgt_in, encode(src))``."""
    return inference.forward(HOOKS, model, src, tgt_in)


def attention_weights(model: Any, src, tgt_in) -> np.ndarray:
    """Teacher-forced attention weights, float32 (B, T, S): how much step t reads source s.

    A row sums to 1 over the real source positions, 0 at PAD ones, and is all 0 for
    an all-PAD source row; rows at PAD positions of ``tgt_in`` are unspecified.
    """
    return inference.attention_weights(HOOKS, model, src, tgt_in)


def greedy_decode(model: Any, src, max_len: int) -> np.ndarray:
    """One-to-many generation: int64 (B, max_len), EOS kept, PAD after it."""
    return inference.greedy_decode(HOOKS, model, src, max_len)


def beam_decode(model: Any, src, beam_size: int, max_len: int) -> np.ndarray:
    """Beam search (length-normalised): int64 (B, max_len); beam_size=1 equals greedy."""
    return inference.beam_decode(HOOKS, model, src, beam_size, max_len)
