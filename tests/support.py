"""Test data shared by the parity tests: a grid of configurations, ragged batches, the ladder.

The grid covers every level of each factor (layers 1 to 3, bidirectional or
not, E equal to H or not) in six models, each pair of levels at least once, for
each cell (LSTM and GRU): twelve models.  E == H matters: there a kernel swapped
with the recurrent kernel passes every shape check, so only the numbers can
catch it.  Four more models have attention, each kind with each cell once and
with a uni- and a bidirectional encoder once (the same ladder files also run
for Keras on JAX and PyTorch, so the grid grows by four, not by a factor).

Each grid model's reference side (``grid_case``) and each engine's model holding its
weights (``grid_model``) are made once per test session; ``climb_rungs`` runs rungs of
the parity ladder (``shared.ladder``) for one engine and fails on the first row
over its tolerance, naming the engine, the grid model, the rung, the tensor and
the largest difference.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest

from shared import BOS, Seq2SeqConfig
from shared.ladder import (
    Outputs,
    Reference,
    compare_outputs,
    engine_name,
    engine_outputs,
    run_reference,
)
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
# Keras on JAX and on PyTorch (tests/run.py) climb the ladder over ten of the
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
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
NEEDS = {"keras_impl": ("keras", KERAS_BACKEND), "torch_impl": ("torch",),
         "onnx_impl": ("onnxruntime",)}


def backend(name: str):
    """Import a backend, or skip the test where its framework is not installed."""
    for module in NEEDS[name]:
        pytest.importorskip(module)
    return importlib.import_module(name)


# The engines that train (onnx_impl, inference only, is not among them): the same names
# as shared.app.backends.TRAINERS, as modules.
TRAINERS = ["keras_impl", "torch_impl"]
# Every engine that runs a model, for the inference rungs: the two above and, where ONNX
# Runtime is installed (it is, in `make test`), onnx_impl.
ENGINES = TRAINERS + (["onnx_impl"] if importlib.util.find_spec("onnxruntime") else [])

# On another Keras backend only keras_impl's cases run, alone or beside another engine:
# torch_impl's and onnx_impl's own ran in the main process, on TensorFlow.
ON_TENSORFLOW = KERAS_BACKEND == "tensorflow"
GRID_HERE = GRID if ON_TENSORFLOW else OTHER_KERAS_GRID
ENGINES_HERE = ENGINES if ON_TENSORFLOW else ["keras_impl"]
# Every ordered pair of engines (the first encodes, or writes, the second reads).
PAIRS = [(a, b) for a in ENGINES for b in ENGINES
         if a != b and (ON_TENSORFLOW or "keras_impl" in (a, b))]
# Every pair once, in ENGINES order.
BOTH_WAYS = [(a, b) for a, b in PAIRS if ENGINES.index(a) < ENGINES.index(b)]


def model_with(name: str, config: Seq2SeqConfig, weights: dict):
    """(backend module, model) of backend ``name`` holding the canonical ``weights``."""
    module = backend(name)
    model = module.build_model(config, seed=0)
    module.import_weights(model, weights)
    return module, model


@dataclass(frozen=True)
class Case:
    """One grid model: its config and random weights, and the reference's side of the ladder
    on the grid's batch (``sample_batch(seed=3)``; greedy and beam over 9 tokens)."""

    params: tuple
    config: Seq2SeqConfig
    weights: dict
    reference: Reference

    @property
    def id(self) -> str:
        return grid_id(self.params)

    @property
    def src(self) -> np.ndarray:
        return self.reference.inputs.src                                    # (B, S)

    @property
    def tgt_in(self) -> np.ndarray:
        return self.reference.inputs.tgt_in                                 # (B, T)


@functools.cache
def grid_case(params: tuple) -> Case:
    """The case of grid model ``params``, made once per session (weights ``grid_weights``, 7)."""
    config = grid_config(*params)
    weights = grid_weights(config, seed=7)
    src, tgt_in = sample_batch(seed=3)
    return Case(params, config, weights, run_reference(weights, config, src, tgt_in, max_len=9))


@functools.cache
def grid_model(name: str, params: tuple):
    """(module, model) of engine ``name`` holding the case's weights, built once per session.

    Tests that give it other weights put the case's back (``holding``): a Keras model is
    traced once, on TensorFlow seconds a model.
    """
    case = grid_case(params)
    return model_with(name, case.config, case.weights)


@contextlib.contextmanager
def holding(name: str, case: Case):
    """Lend ``grid_model(name, case.params)`` to a test that changes its weights; put them back."""
    module, model = grid_model(name, case.params)
    try:
        yield module, model
    finally:
        module.import_weights(model, case.weights)


def climb_rungs(name: str, case: Case, rungs: Sequence[str], reference: Reference | None = None,
                label: str | None = None) -> Outputs:
    """Engine ``name`` climbs ``rungs`` of the ladder on ``case``; fails on a row over tolerance.

    Args:
        reference: the side to compare with; None: the case's (``reference.inputs`` are
            what the engine is given, e.g. another engine's hand-off).
        label: what the rows call the engine; None: its name, e.g. "keras/jax".

    Returns:
        The engine's outputs on those rungs, for the checks that are not a comparison.
    """
    module, model = grid_model(name, case.params)
    reference = case.reference if reference is None else reference
    got = engine_outputs(module, model, reference.inputs, rungs)
    rows = compare_outputs(label or engine_name(module), got, reference.outputs,
                           reference.inputs.tgt_in)
    assert_rungs(rows, case.id)
    return got


def assert_rungs(rows, where: str) -> None:
    """The one parity assertion: every row within its tolerance, and at least one row."""
    assert rows, f"{where}: no rung was compared"
    for row in rows:
        if not row.ok:
            raise AssertionError(f"{where}: {row}")


def crossed(case: Case, state, memory) -> Reference:
    """The case's reference side, with ``state`` and ``memory`` as the decoders' inputs."""
    inputs = replace(case.reference.inputs, state=tuple(state), memory=memory)
    return replace(case.reference, inputs=inputs)


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


def expected_export(name: str, weights: dict, config: Seq2SeqConfig) -> dict:
    """What engine ``name``'s ``export_weights`` gives after importing ``weights``.

    keras_impl and onnx_impl keep an LSTM's two biases as one sum (``keras_export``);
    torch_impl keeps both, and a GRU's two biases stay two everywhere.
    """
    return keras_export(weights, config) if name in ("keras_impl", "onnx_impl") else weights
