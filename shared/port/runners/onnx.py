"""Run an ONNX LSTM or GRU node in ONNX Runtime, for ``--check``.

The node is rebuilt alone, with its own W, R, B and attributes, in a one-node
model fed X (T, B, in), ``sequence_lens`` and the initial states (D, B, H);
Y (T, D, B, H) comes back as the check's (B, T, D*H).  Conventions as in
``run_torch``.

Shape legend: B batch, T steps, H hidden, D directions.
"""

from __future__ import annotations

import numpy as np


def available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def node(layer, x: np.ndarray, lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
    """The layer's node(s) in ONNX Runtime, layer k reading layer k-1's outputs; returns
    (outputs (B, T, D*H), h_n (L*D, B, H), c_n)."""
    D = len(layer.directions)
    y, h_n, c_n = x, [], []
    for k in range(layer.num_layers):
        rows = slice(k * D, (k + 1) * D)
        y, h, c = _one(layer, k, y, lengths, h0[rows], None if c0 is None else c0[rows])
        h_n.append(h)
        c_n.extend([] if c is None else [c])
    return y, np.concatenate(h_n), np.concatenate(c_n) if c_n else None


def _one(layer, k: int, x, lengths, h0, c0):
    """Node k alone, rebuilt with its own W, R, B in a one-node model."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    op, lstm = layer.settings["op"], layer.cell == "lstm"
    inputs = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c"] if lstm else [])
    outputs = ["Y", "Y_h"] + (["Y_c"] if lstm else [])
    attributes = {"hidden_size": layer.hidden, "direction": layer.settings["direction"]}
    if not lstm:
        attributes["linear_before_reset"] = layer.settings["linear_before_reset"]
    D, H = h0.shape[0], layer.hidden
    state = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [D, "B", H])  # noqa: E731
    graph = helper.make_graph(
        [helper.make_node(op, inputs, outputs, **attributes)], "one_node",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", x.shape[2]]),
         helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
         *(state(name) for name in inputs[5:])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", D, "B", H]),
         *(state(name) for name in outputs[1:])],
        initializer=[numpy_helper.from_array(layer.raw[f"l{k}.{name}"], name)
                     for name in ("W", "R", "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    feeds = {"X": np.ascontiguousarray(x.transpose(1, 0, 2)),
             "sequence_lens": np.asarray(lengths, np.int32), "initial_h": h0}
    if lstm:
        feeds["initial_c"] = c0
    results = session.run(None, feeds)
    B, T = x.shape[:2]
    y = results[0].transpose(2, 0, 1, 3).reshape(B, T, D * H)  # (T, D, B, H) -> (B, T, D*H)
    y = y * (np.arange(T) < np.asarray(lengths)[:, None])[:, :, None]
    return y, results[1], results[2] if lstm else None
