"""Test data shared by the parity tests: a grid of configurations and ragged batches.

The grid covers every level of each factor (layers 1 to 3, bidirectional or
not, E equal to H or not) in six models, each pair of levels at least once, for
each cell (LSTM and GRU): twelve models.  E == H matters: there a kernel swapped
with the recurrent kernel passes every shape check, so only the numbers can
catch it.  Four more models have attention, each kind with each cell once and
with a uni- and a bidirectional encoder once (the same parity files also run
for Keras on JAX and PyTorch, so the grid grows by four, not by a factor).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from shared import BOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import STATE_ATOL, assert_close
from shared.decoding.search import beam_search
from shared.layout import random_weights
from shared.text.data import random_ids

V_SRC, V_TGT = 13, 11

CELLS = ["lstm", "gru"]

# (num_layers, bidirectional, embedding_dim, hidden_size)
SHAPES = [
    (1, False, 6, 6),
    (1, True, 5, 7),
    (2, False, 4, 6),
    (2, True, 6, 6),
    (3, False, 8, 8),
    (3, True, 7, 5),
]
# (cell, num_layers, bidirectional, embedding_dim, hidden_size, attention)
ATTENTION_GRID = [
    ("lstm", 2, True, 6, 6, "luong"),
    ("gru", 1, False, 5, 7, "luong"),
    ("lstm", 1, False, 6, 6, "bahdanau"),
    ("gru", 2, True, 7, 5, "bahdanau"),
]
GRID = [(cell, *shape, "none") for cell in CELLS for shape in SHAPES] + ATTENTION_GRID
# Keras on JAX and on PyTorch (tests/keras_backend_runs.py) climb the ladder over ten of the
# sixteen: each cell at 1, 2 and 3 layers, one and two directions, E != H, and the four
# attending models.  The six left out differ from these in sizes only, and sizes meet
# backend-free code alone (the layout, weights.py's assignments); what a backend does
# (the masked scan, compiling, gradients) every kept model exercises.  On JAX each new
# model costs seconds of XLA compiling, from its initialisers on.
OTHER_KERAS_GRID = [(cell, *shape, "none") for cell in CELLS for shape in SHAPES
                    if shape in ((1, True, 5, 7), (2, False, 4, 6), (3, True, 7, 5))
                    ] + ATTENTION_GRID


def grid_config(
    cell, num_layers, bidirectional, embedding_dim, hidden_size, attention="none"
) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        src_vocab_size=V_SRC,
        tgt_vocab_size=V_TGT,
        embedding_dim=embedding_dim,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        cell=cell,
        attention=attention,
    )


def grid_weights(config: Seq2SeqConfig, seed: int) -> dict:
    """Random canonical weights for a grid model; an attending one draws them wider.

    At ``random_weights``' default range (0.3) a two-layer LSTM's outputs stay
    within about 0.2, and Luong's score h_t^T W_a h_s, a product of two of them,
    stays near 0: a transposed W_a moved the logits by 1e-4, the tolerance.  At
    0.5 it moves them by 6e-3.  Models without attention keep the default.
    """
    return random_weights(config, seed=seed, scale=0.5 if config.has_attention else 0.3)


def grid_id(params) -> str:
    cell, L, bi, E, H, attention = params
    suffix = "" if attention == "none" else f"-{attention}"
    return f"{cell}-L{L}-{'bi' if bi else 'uni'}-E{E}-H{H}{suffix}"


# Mixed lengths: a long row, a length-1 row and an empty source row.
SRC_LENGTHS = [7, 1, 0, 4, 6]
TGT_LENGTHS = [5, 3, 1, 6, 2]


def sample_batch(seed: int = 0):
    """(src (5, 7), tgt_in (5, 6)) with the mixed lengths above; tgt_in starts with BOS."""
    rng = np.random.default_rng(seed)
    src = random_ids(rng, SRC_LENGTHS, V_SRC)
    tgt_in = random_ids(rng, TGT_LENGTHS, V_TGT, first=BOS)
    return src, tgt_in


# The framework each backend needs; keras_impl needs Keras and its backend's framework.
# onnx_impl, inference only, is kept out of BACKENDS (the training backends) and has its
# own tests (test_onnx_*.py).
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
NEEDS = {"keras_impl": ("keras", KERAS_BACKEND), "torch_impl": ("torch",),
         "onnx_impl": ("onnxruntime",)}


def backend(name: str):
    """Import a backend, or skip the test where its framework is not installed."""
    for module in NEEDS[name]:
        pytest.importorskip(module)
    return importlib.import_module(name)


BACKENDS = ["keras_impl", "torch_impl"]
# Every engine that runs a model, for the inference rungs: the two above and, where ONNX
# Runtime is installed (it is, in `make test`), onnx_impl.
ENGINES = BACKENDS + (["onnx_impl"] if importlib.util.find_spec("onnxruntime") else [])


def model_with(name: str, config: Seq2SeqConfig, weights: dict):
    """(backend module, model) of backend ``name`` holding the canonical ``weights``."""
    module = backend(name)
    model = module.build_model(config, seed=0)
    module.import_weights(model, weights)
    return module, model


def reference_beam(weights: dict, config: Seq2SeqConfig, src, beam_size: int, max_len: int):
    """Beam tokens (B, max_len) of the NumPy reference, searched by shared.decoding.search.

    An attending model carries (state, memory): beam search reorders the state along
    its batch axis 1 and the memory (encoder outputs, source mask) along axis 0.
    """
    if not config.has_attention:
        def step(tokens, state):
            logits, state = reference.decode(weights, config, tokens[:, None], state)
            return logits[:, 0], state

        state = reference.encode(weights, config, src)
        return beam_search(step, state, len(src), beam_size, max_len)

    def attend_step(tokens, carried):
        state, memory = carried
        logits, state = reference.decode(weights, config, tokens[:, None], state, memory)
        return logits[:, 0], (state, memory)

    def select(carried, index):
        state, memory = carried
        return tuple(np.take(part, index, axis=1) for part in state), memory.take(index)

    carried = reference.encode(weights, config, src, return_memory=True)
    return beam_search(attend_step, carried, len(src), beam_size, max_len, select=select)


def keras_export(weights: dict, config: Seq2SeqConfig) -> dict:
    """What ``keras_impl.export_weights`` gives for a model that imported ``weights``.

    A Keras LSTM keeps one bias per gate, the sum: it exports b_ih + b_hh as b_ih and
    zeros as b_hh.  A Keras GRU (reset_after=True) keeps both biases as they are.
    """
    if config.cell != "lstm":
        return dict(weights)
    exported = dict(weights)
    for key, value in weights.items():
        if key.endswith(".b_ih"):
            exported[key] = value + weights[key[: -len("b_ih")] + "b_hh"]
        elif key.endswith(".b_hh"):
            exported[key] = np.zeros_like(value)
    return exported


def assert_attention_weights(name: str, module, model, weights: dict, config, src, tgt_in):
    """The attention rung for one engine: ``module.attention_weights`` against the reference.

    a (B, T, S) float32 equals the reference's (atol 1e-5) at real target positions, is
    finite, sums to 1 over the real source tokens, is 0 on PAD source positions and all
    0 for an all-PAD source row (the batch must hold one).  A model without attention
    must refuse to give weights.
    """
    if not config.has_attention:
        with pytest.raises(ValueError, match=r"this model has no attention"):
            module.attention_weights(model, src, tgt_in)
        return
    a = module.attention_weights(model, src, tgt_in)                       # (B, T, S)
    assert a.shape == (len(src), tgt_in.shape[1], src.shape[1]) and a.dtype == np.float32
    real = tgt_in != PAD                                                    # (B, T)
    assert_close(f"{name} {config.cell} {config.attention} attention weights", a,
                 reference.attention_weights(weights, config, src, tgt_in), STATE_ATOL,
                 mask=real)
    assert np.isfinite(a).all(), f"{name}: NaN or inf in the attention weights"
    has_source = (src != PAD).any(axis=1)                                   # (B,)
    sums = a.sum(axis=2)[real & has_source[:, None]]
    assert_close(f"{name} attention row sums", sums, np.ones_like(sums), STATE_ATOL)
    pad_source = np.broadcast_to((src == PAD)[:, None, :], a.shape)         # (B, T, S)
    assert not a[pad_source].any(), f"{name}: a PAD source position received attention"
    assert not has_source.all() and not a[~has_source].any(), "an all-PAD source: weights 0"


# ---- a tolerance beyond shared.core.compare's ----

# float64 against float64: the reference against equations written out by hand, or against
# itself on another batch.  The same operations summed in another order differ by a few
# units in the 16th digit; 1e-12 leaves room for that and for nothing else.
FLOAT64_ATOL = 1e-12
