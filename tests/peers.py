"""The frameworks that compute an LSTM or a GRU, as peers of the reference: their arrays and layers.

The bottom rungs of the ladder hold the NumPy reference (``shared.reference.cells``)
up against every framework that computes the same cells: one step in
``tests/test_ladder_1_cell.py``, one layer in ``tests/test_ladder_2_layer.py``.
A ``Peer`` is one framework with the switches that change its equations:

    framework  one layer, run for real here                    switches
    torch      nn.LSTM / nn.GRU, packed by length             none (nn.GRU resets after)
    keras      layers.LSTM / layers.GRU, masked by length     reset_after (GRU)
    onnx       one LSTM / GRU node, in ONNX Runtime or in     linear_before_reset (GRU),
               ONNX's reference evaluator                     the runtime
    tf1        LSTMCell, BasicLSTMCell, GRUCell in            forget_bias (LSTM, added to
               tf.compat.v1.nn.dynamic_rnn (a v1 graph)       the forget gate at run time)

Keras is the hub of the converters (``shared.layout``): every peer's arrays go to
Keras's and back, and reach the reference's (PyTorch's) layout through Keras's.
Weights are random and asymmetric everywhere: with constants, or with the same
numbers in every gate block, a gate-order mistake cannot show.

Shape legend: B batch, T time, H hidden, D directions, G gates (4 for an LSTM, 3 for a GRU).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from shared import layout
from shared.reference.cells import reverse_real

CELLS = ["lstm", "gru"]
GATES = {"lstm": 4, "gru": 3}
STATE_PARTS = {"lstm": ("h", "c"), "gru": ("h",)}  # our order: h first
LENGTHS = [4, 1, 3]  # mixed lengths, a length-1 row among them
FULL_ROWS = [4, 4, 4]
# TF1 stores its arrays under these names, below the cell's scope ("rnn/gru_cell/...").
TF1_NAMES = {"lstm": ("kernel", "bias"),
             "gru": ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")}


@dataclass(frozen=True)
class Peer:
    """One framework computing one cell, with the switches that change its equations."""

    framework: str                # "torch", "keras", "onnx" or "tf1"
    cell: str                     # "lstm" or "gru"
    reset_after: bool = True      # GRU: the reset acts after the recurrent product (PyTorch's)
    forget_bias: float = 0.0      # TF1 LSTM: added to the forget gate's bias when the cell runs
    tf1_cell: str = ""            # TF1: the cell class, LSTMCell, BasicLSTMCell or GRUCell
    runtime: str = "onnxruntime"  # ONNX: "onnxruntime" or "onnx.reference"

    def __str__(self) -> str:
        kind = self.cell.upper()
        if self.framework == "torch":
            return f"nn.{kind}"
        if self.framework == "tf1":
            return (f"TF1 {self.tf1_cell}(forget_bias={self.forget_bias})" if self.cell == "lstm"
                    else f"TF1 {self.tf1_cell}")
        switch = {"keras": f"(reset_after={self.reset_after})",
                  "onnx": f"(linear_before_reset={int(self.reset_after)})"}[self.framework]
        name = {"keras": "Keras", "onnx": self.runtime}[self.framework]
        return f"{name} {kind}{switch if self.cell == 'gru' else ''}"

    @property
    def lengths(self) -> list[int]:
        """The row lengths this peer is given.

        ONNX's reference evaluator ignores sequence_lens (onnx/reference/ops/op_lstm.py and
        op_gru.py take the argument, marked unused, and never read it), so it gets full
        rows only; every other peer honours lengths and gets rows of mixed lengths.
        """
        ignores_lengths = self.framework == "onnx" and self.runtime == "onnx.reference"
        return FULL_ROWS if ignores_lengths else LENGTHS

    def names(self) -> tuple[str, ...]:
        """The names of this peer's arrays, in its own order."""
        return {"torch": ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                "keras": ("kernel", "recurrent_kernel", "bias"),
                "onnx": ("W", "R", "B"), "tf1": TF1_NAMES[self.cell]}[self.framework]

    def keras(self) -> Peer:
        """The Keras layer that computes what this peer computes."""
        return Peer("keras", self.cell, reset_after=self.reset_after)

    def shapes(self, inputs: int, hidden: int) -> list[tuple[int, ...]]:
        """The shapes of this peer's arrays for one layer, one direction, in its own order."""
        G, H = GATES[self.cell] * hidden, hidden
        if self.framework == "torch":
            return [(G, inputs), (G, H), (G,), (G,)]
        if self.framework == "keras":
            two_biases = self.cell == "gru" and self.reset_after
            return [(inputs, G), (H, G), (2, G) if two_biases else (G,)]
        if self.framework == "onnx":
            return [(G, inputs), (G, H), (2 * G,)]
        if self.cell == "lstm":
            return [(inputs + H, G), (G,)]
        return [(inputs + H, 2 * H), (2 * H,), (inputs + H, H), (H,)]

    def random_arrays(self, rng, inputs: int, hidden: int, dtype=np.float32) -> tuple:
        """Random arrays in this peer's layout, every bias nonzero (both, where it keeps two)."""
        return tuple(rng.uniform(-0.5, 0.5, shape).astype(dtype)
                     for shape in self.shapes(inputs, hidden))

    def to_keras(self, arrays) -> tuple:
        """This peer's arrays as the Keras layer's (kernel, recurrent_kernel, bias)."""
        if self.framework == "keras":
            return tuple(arrays)
        extra = self._forget_bias()
        if self.framework == "onnx" and self.cell == "gru":
            extra["linear_before_reset"] = int(self.reset_after)
        return getattr(layout, f"{self.framework}_{self.cell}_to_keras")(*arrays, **extra)

    def from_keras(self, keras_arrays) -> tuple:
        """The Keras layer's arrays in this peer's layout."""
        if self.framework == "keras":
            return tuple(keras_arrays)
        return getattr(layout, f"keras_{self.cell}_to_{self.framework}")(*keras_arrays,
                                                                        **self._forget_bias())

    def _forget_bias(self) -> dict:
        """The TF1 LSTM converters' forget_bias argument: what the cell adds when it runs."""
        return ({"forget_bias": self.forget_bias} if self.framework == "tf1" and self.cell == "lstm"
                else {})

    def reference_params(self, arrays) -> tuple:
        """(W_ih, W_hh, b_ih, b_hh) for the reference cell: PyTorch's layout, through Keras's."""
        if self.framework == "torch":
            return tuple(arrays)
        kernel, recurrent_kernel, bias = self.to_keras(arrays)
        if self.cell == "gru" and not self.reset_after:
            # keras_gru_to_torch refuses this GRU (nn.GRU cannot reset before the product);
            # the reference can: the same blocks in r, z, n order, the one bias as b_ih.
            def to_rzn(array):
                return layout.reorder_gates(array, "keras", "torch", axis=0, cell="gru")

            return to_rzn(kernel.T), to_rzn(recurrent_kernel.T), to_rzn(bias), np.zeros_like(bias)
        return getattr(layout, f"keras_{self.cell}_to_torch")(kernel, recurrent_kernel, bias)


def random_state(rng, cell: str, batch: int, hidden: int, dtype=np.float32) -> tuple:
    """A nonzero initial state, (h0, c0) or (h0,), each (B, H): "kept" must be visible."""
    h0 = rng.uniform(-0.5, 0.5, (batch, hidden)).astype(dtype)
    c0 = rng.uniform(-1.0, 1.0, (batch, hidden)).astype(dtype)
    return (h0, c0) if cell == "lstm" else (h0,)


def real_steps(steps: int, lengths) -> np.ndarray:
    """(B, T, 1) booleans: is step t a real token of row b?"""
    return (np.arange(steps) < np.asarray(lengths)[:, None])[:, :, None]


# ---- one layer, one direction, in each framework ----

def run_torch(peer, arrays, x, lengths, state):
    """A real nn.LSTM / nn.GRU holding (weight_ih, weight_hh, bias_ih, bias_hh), packed."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[peer.cell](
        x.shape[2], state[0].shape[1], batch_first=True)
    with torch.no_grad():
        for name, array in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                               arrays, strict=True):
            getattr(rnn, name).copy_(torch.from_numpy(np.asarray(array)))
        packed = pack_padded_sequence(torch.from_numpy(x), torch.tensor(lengths),
                                      batch_first=True, enforce_sorted=False)
        initial = tuple(torch.from_numpy(part)[None] for part in state)  # each (1, B, H)
        out, final = rnn(packed, initial if peer.cell == "lstm" else initial[0])
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    final = final if peer.cell == "lstm" else (final,)
    return out.numpy(), tuple(part[0].numpy() for part in final)


def run_keras(peer, arrays, x, lengths, state):
    """A real keras.layers.LSTM / GRU holding (kernel, recurrent_kernel, bias), masked by length."""
    import keras

    H = state[0].shape[1]
    rnn = (keras.layers.LSTM(H, return_sequences=True, return_state=True) if peer.cell == "lstm"
           else keras.layers.GRU(H, return_sequences=True, return_state=True,
                                 reset_after=peer.reset_after))
    rnn.build(x.shape)
    rnn.set_weights([np.asarray(a) for a in arrays])
    mask = real_steps(x.shape[1], lengths)  # (B, T, 1)
    out, *final = (keras.ops.convert_to_numpy(a)
                   for a in rnn(x, initial_state=list(state), mask=mask[:, :, 0]))
    return out * mask, tuple(final)  # Keras repeats the last output at padding: zero it


def tf1_cells():
    """TensorFlow and the TF1 cell module, or a skip that says why they are not here."""
    tf = pytest.importorskip("tensorflow")
    try:
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    except ImportError as error:  # pragma: no cover - depends on the TensorFlow build
        pytest.skip(f"TF1 cells (tensorflow.python.keras.layers.legacy_rnn) are not in this "
                    f"TensorFlow {tf.__version__}: {error}")
    return tf, rnn_cell_impl


def run_tf1(peer, arrays, x, lengths, state):
    """A real TF1 cell in dynamic_rnn (a v1 graph and session), holding ``arrays``."""
    tf, rnn_cell_impl = tf1_cells()
    H = state[0].shape[1]
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TF1 cells warn that they are deprecated
        if peer.cell == "lstm":
            cell = getattr(rnn_cell_impl, peer.tf1_cell)(H, forget_bias=peer.forget_bias)
            h0, c0 = state
            initial = rnn_cell_impl.LSTMStateTuple(c=tf.constant(c0), h=tf.constant(h0))  # c first
        else:
            cell = getattr(rnn_cell_impl, peer.tf1_cell)(H)
            initial = tf.constant(state[0])
        outputs, final = tf.compat.v1.nn.dynamic_rnn(
            cell, tf.constant(x), sequence_length=tf.constant(lengths), initial_state=initial)
        # Names such as "rnn/gru_cell/gates/kernel:0": keep what follows the cell's scope.
        variables = {v.name.split(":")[0].split("/", 2)[2]: v for v in cell.variables}
        assert sorted(variables) == sorted(TF1_NAMES[peer.cell]), sorted(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for name, value in zip(TF1_NAMES[peer.cell], arrays, strict=True):
                variables[name].load(value, session)  # refuses an array of another shape
            parts = [final.h, final.c] if peer.cell == "lstm" else [final]
            out, *final = session.run([outputs, *parts])
    return out, tuple(final)


LAYERS = {"torch": run_torch, "keras": run_keras, "tf1": run_tf1}


# ---- ONNX: one LSTM or GRU node over every direction at once ----

def onnx_node_model(peer, W, R, B):
    """A one-node ONNX model: the cell over X (T, B, in), sequence_lens and the initial state."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnx.reference")
    from onnx import TensorProto, helper, numpy_helper

    D, H = W.shape[0], R.shape[-1]
    state = [f"initial_{part}" for part in STATE_PARTS[peer.cell]]
    switches = {"linear_before_reset": int(peer.reset_after)} if peer.cell == "gru" else {}
    node = helper.make_node(
        peer.cell.upper(), ["X", "W", "R", "B", "sequence_lens", *state],
        ["Y", *(f"Y_{part}" for part in STATE_PARTS[peer.cell])],
        hidden_size=H, direction="bidirectional" if D == 2 else "forward", **switches)
    shape = [None, "B", H]  # (D, B, H)
    graph = helper.make_graph(
        [node], peer.cell,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", W.shape[-1]]),
         helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
         *(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in state)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", None, "B", H]),
         *(helper.make_tensor_value_info(f"Y_{part}", TensorProto.FLOAT, shape)
           for part in STATE_PARTS[peer.cell])],
        initializer=[numpy_helper.from_array(np.asarray(a, np.float32), name)
                     for name, a in (("W", W), ("R", R), ("B", B))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def run_onnx_node(peer, model, x, lengths, state, D):
    """(Y (T, D, B, H), [Y_h, Y_c] each (D, B, H)) of a one-node model, from x (B, T, in).

    Every direction starts from the same initial state, each part (B, H).
    """
    feeds = {"X": x.transpose(1, 0, 2).copy(), "sequence_lens": np.asarray(lengths, np.int32),
             **{f"initial_{name}": np.stack([part] * D)
                for name, part in zip(STATE_PARTS[peer.cell], state, strict=True)}}
    if peer.runtime == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        Y, *final = session.run(None, feeds)
    else:
        from onnx.reference import ReferenceEvaluator

        Y, *final = ReferenceEvaluator(model).run(None, feeds)
    return Y, final


def run_layer(peer, per_direction, x, lengths, state):
    """Run ``peer`` over x (B, T, in) with one set of arrays per direction (forward, backward).

    Returns one (outputs (B, T, H) in input order with zeros at padding, final state)
    per direction.  ONNX runs both directions in one node; every other framework reads
    the backward direction as the forward one on each row's real steps reversed.
    """
    real = real_steps(x.shape[1], lengths)  # (B, T, 1)
    if peer.framework == "onnx":
        W, R, B = (np.stack([arrays[i] for arrays in per_direction]) for i in range(3))  # (D, ...)
        Y, final = run_onnx_node(peer, onnx_node_model(peer, W, R, B), x, lengths, state,
                                 len(per_direction))
        assert Y.shape == (x.shape[1], len(per_direction), x.shape[0], state[0].shape[1]), \
            "ONNX's Y is (T, D, B, H)"
        return [(Y[:, d].transpose(1, 0, 2) * real, tuple(part[d] for part in final))
                for d in range(len(per_direction))]
    results = []
    for d, arrays in enumerate(per_direction):
        steps = x if d == 0 else reverse_real(x, lengths)
        out, final = LAYERS[peer.framework](peer, arrays, steps, lengths, state)
        results.append((out if d == 0 else reverse_real(out, lengths), final))
    return results
