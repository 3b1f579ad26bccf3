"""``--check``: run every ported layer in the target framework and in the source, and compare.

A port proves itself layer by layer.  Each recurrent layer gets random inputs
of mixed lengths (a length-1 row among them) and a random initial state, and
runs twice:

- in the target: the real ``nn.LSTM``/``nn.GRU`` or ``keras.layers.LSTM``/``GRU``
  the report prints, holding the tensors read back from DST (so the file, not
  only the arrays in memory, is checked);
- in the source: the source framework's own layer holding the source file's own
  arrays (Keras, PyTorch, the TF1 cell via legacy_rnn, the ONNX node in ONNX
  Runtime) where that framework is installed, else ``shared.reference``, the
  NumPy model, on the canonical weights.  Two sources have no framework to run
  here and are computed with their own semantics in NumPy, on their own arrays:
  a Keras 2 layer (``runners.keras2``: Keras 2's activations, its hard_sigmoid
  among them) and a Keras 2 CuDNNLSTM/CuDNNGRU (``runners.cudnn``: the params
  buffer cuDNN was given, read as cuDNN reads it).  Never the target reading the
  converted weights: a check must be able to fail.

The outputs at real steps and every final state (h, and c for an LSTM, for
every layer and direction) must agree within ``STATE_ATOL`` (1e-5, the
project's tolerance for states: float32 rounding is far below it, a wrong gate
or a missed bias far above).  Embeddings and dense layers are compared on
random ids and inputs, the source side in NumPy on the source's own arrays.

Shape legend: B batch, T steps, H hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from shared.core.compare import STATE_ATOL, max_abs_diff
from shared.port.files import Written, key, load
from shared.port.layers import Dense, Embedding, PortError, Recurrent
from shared.port.runners import cudnn as run_cudnn
from shared.port.runners import keras as run_keras
from shared.port.runners import keras2 as run_keras2
from shared.port.runners import onnx as run_onnx
from shared.port.runners import tf1 as run_tf1
from shared.port.runners import torch as run_torch
from shared.port.writers.keras import WEIGHTS
from shared.reference.cells import rnn_layer

LENGTHS = (5, 1, 4, 2)  # mixed, with a length-1 row; T = 5
ENGINES = {"keras": "keras", "torch": "torch", "tf1": "tf1 legacy_rnn", "onnx": "onnxruntime",
           "keras2": "keras 2 (numpy)", "cudnn": "cudnn layout (numpy)"}


@dataclass(frozen=True)
class CheckRow:
    """One layer's comparison: the largest |target - source| of each compared tensor."""

    name: str
    kind: str
    sizes: str
    source: str  # what ran the source side: an engine of ENGINES, "reference" or "numpy"
    target: str
    diffs: dict
    atol: float

    @property
    def worst(self) -> float:
        return max(self.diffs.values())

    @property
    def ok(self) -> bool:
        return all(diff <= self.atol for diff in self.diffs.values())  # False for NaN


def check(written: Written, *, engine: str = "auto", seed: int = 0) -> list[CheckRow]:
    """Compare every layer of ``written`` (read back from its file) with its source.

    Args:
        written: what ``write_torch`` or ``write_keras`` returned.
        engine: "auto" runs the source framework where it is installed, else the
            NumPy reference; "reference" always uses the reference.
        seed: of the random inputs and initial states.
    """
    if importlib.util.find_spec(written.target) is None:
        raise PortError(f"--check runs the ported layers in {written.target}, which is not "
                        f"installed (pip install {written.target})")
    tensors = load(written.path, written.target)
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    for target in written.layers:
        layer = target.source
        if id(layer) in seen:
            continue  # a PyTorch module's L Keras layers are checked as one stack
        seen.add(id(layer))
        parts = [t for t in written.layers if t.source is layer]
        stored = [{name: tensors[key(t.name, name)] for name in t.tensors} for t in parts]
        if isinstance(layer, Recurrent):
            rows.append(_recurrent(layer, parts, stored, written.target, engine, rng))
        else:
            rows.append(_table_or_dense(layer, parts[0], stored[0], written.target, rng))
    return rows


def _source_engine(layer: Recurrent, engine: str) -> str:
    if engine == "reference":
        return "reference"
    installed = {"keras": lambda: importlib.util.find_spec("keras") is not None,
                 "torch": lambda: importlib.util.find_spec("torch") is not None,
                 "tf1": run_tf1.available, "onnx": run_onnx.available,
                 "keras2": lambda: True, "cudnn": lambda: True}
    return ENGINES[layer.origin] if installed[layer.origin]() else "reference"


def _recurrent(layer: Recurrent, parts, stored, target: str, engine: str, rng) -> CheckRow:
    B, T, D = len(LENGTHS), max(LENGTHS), len(layer.directions)
    lengths = np.array(LENGTHS)
    x = rng.normal(size=(B, T, layer.inputs)).astype(np.float32)  # (B, T, in)
    shape = (layer.num_layers * D, B, layer.hidden)  # (L*D, B, H)
    h0 = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    c0 = rng.uniform(-0.5, 0.5, shape).astype(np.float32) if layer.cell == "lstm" else None
    if target == "torch":
        got = run_torch.rnn(parts[0].kind, parts[0].args, parts[0].kwargs, stored[0],
                            x, lengths, h0, c0)
    else:
        weights = [[arrays[f"{prefix}{w}"] for prefix in _prefixes(layer) for w in WEIGHTS]
                   for arrays in stored]
        got = run_keras.rnn(parts[0].kind, layer.hidden, parts[0].kwargs, layer.bidirectional,
                            weights, x, lengths, h0, c0)
    source = _source_engine(layer, engine)
    expected = _run_source(layer, source, x, lengths, h0, c0)
    mask = np.arange(T) < lengths[:, None]  # (B, T): real steps
    diffs = {"outputs": max_abs_diff(got[0], expected[0], mask)[0],
             "h": max_abs_diff(got[1], expected[1])[0]}
    if c0 is not None:
        diffs["c"] = max_abs_diff(got[2], expected[2])[0]
    return CheckRow(layer.name, layer.cell, layer.sizes(), source, target, diffs, STATE_ATOL)


def _prefixes(layer: Recurrent) -> list[str]:
    return [f"{d}." for d in layer.directions] if layer.bidirectional else [""]


def _run_source(layer: Recurrent, source: str, x, lengths, h0, c0):
    if source == "reference":
        return _reference(layer, x, lengths, h0, c0)
    if layer.origin == "torch":
        kwargs = {"num_layers": layer.num_layers, "bidirectional": layer.bidirectional,
                  "bias": layer.settings["bias"]}
        return run_torch.rnn(layer.cell.upper(), (layer.inputs, layer.hidden), kwargs, layer.raw,
                             x, lengths, h0, c0)
    if layer.origin == "keras":
        kwargs = {**layer.settings["keras_options"], "use_bias": layer.settings["use_bias"]}
        if layer.cell == "gru":
            kwargs["reset_after"] = layer.reset_after
        weights = [[layer.raw[f"{d}.{w}"] for d in layer.directions for w in WEIGHTS
                    if f"{d}.{w}" in layer.raw]]
        return run_keras.rnn(layer.cell.upper(), layer.hidden, kwargs, layer.bidirectional,
                             weights, x, lengths, h0, c0)
    if layer.origin == "keras2":
        return run_keras2.rnn(layer, x, lengths, h0, c0)
    if layer.origin == "cudnn":
        return run_cudnn.rnn(layer, x, lengths, h0, c0)
    if layer.origin == "tf1":
        return run_tf1.cell(layer, x, lengths, h0, c0)
    return run_onnx.node(layer, x, lengths, h0, c0)


def _reference(layer: Recurrent, x, lengths, h0, c0):
    """``shared.reference`` on the canonical weights: layer k reads layer k-1's [fw, bw]."""
    D = len(layer.directions)
    y, h_n, c_n = x, [], []
    for k in range(layer.num_layers):
        outputs = []
        for d, direction in enumerate(layer.directions):
            i = k * D + d
            start = (h0[i],) if c0 is None else (h0[i], c0[i])
            out, state = rnn_layer(layer.cell, y, lengths, start, layer.stacked(k, direction),
                                   reverse=direction == "backward", reset_after=layer.reset_after)
            outputs.append(out)
            h_n.append(state[0])
            c_n.extend(state[1:])
        y = np.concatenate(outputs, axis=-1)  # (B, T, D*H)
    return y, np.stack(h_n), np.stack(c_n) if c_n else None


def _table_or_dense(layer, part, stored, target: str, rng) -> CheckRow:
    B, T = len(LENGTHS), max(LENGTHS)
    if isinstance(layer, Embedding):
        ids = rng.integers(0, layer.weight.shape[0], size=(B, T))  # (B, T)
        expected = layer.weight[ids]  # (B, T, E): a lookup, in the source's own table
        if target == "torch":
            got = run_torch.embedding(part.args, stored["weight"], ids)
        else:
            got = run_keras.embedding(part.args, stored["embeddings"], ids)
        return CheckRow(layer.name, "embedding", layer.sizes(), "numpy", target,
                        {"outputs": max_abs_diff(got, expected)[0]}, STATE_ATOL)
    assert isinstance(layer, Dense)
    x = rng.normal(size=(B, T, layer.weight.shape[1])).astype(np.float32)  # (B, T, in)
    raw = layer.raw  # the source's own orientation: x @ kernel, or W @ x
    expected = x @ raw["kernel"] if "kernel" in raw else x @ raw["weight"].T  # (B, T, out)
    if "bias" in raw:
        expected = expected + raw["bias"]
    if target == "torch":
        got = run_torch.linear(part.args, part.kwargs, stored, x)
    else:
        arrays = [stored["kernel"]] + ([stored["bias"]] if "bias" in stored else [])
        got = run_keras.dense(part.args, part.kwargs, arrays, x)
    return CheckRow(layer.name, "dense", layer.sizes(), "numpy", target,
                    {"outputs": max_abs_diff(got, expected)[0]}, STATE_ATOL)


def table(rows: list[CheckRow]) -> str:
    """The check as a table, one row per layer."""
    header = ("layer", "kind", "sizes", "source run by", "outputs", "h", "c", "result")
    lines = [header]
    for row in rows:
        diffs = (_sci(row.diffs[k]) if k in row.diffs else "-" for k in ("outputs", "h", "c"))
        lines.append((row.name or "(module)", row.kind, row.sizes, row.source, *diffs,
                      "ok" if row.ok else "FAIL"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def _sci(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"
