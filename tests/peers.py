"""The LSTM converters against real peers: ONNX's two runtimes and TF1's own cells.

``tests/test_gates.py`` checks the ONNX and TF1 converters against those
formats' equations written out by hand; here the converted arrays run in the
real thing.  Each converter is proven in both directions with random,
asymmetric weights (ONNX's own node tests use constant weights, which cannot
see a gate-order mistake):

* ``keras_lstm_to_onnx``: Keras arrays in an ONNX ``LSTM`` node, run by ONNX
  Runtime and by ``onnx.reference.ReferenceEvaluator``, forward and
  bidirectional, against the NumPy reference;
* ``onnx_lstm_to_keras``: a random ONNX node (both biases nonzero) against a
  real ``keras.layers.LSTM`` holding the converted arrays;
* ``tf1_lstm_to_keras`` and ``keras_lstm_to_tf1``: a real TF1 ``LSTMCell`` and
  ``BasicLSTMCell`` in ``tf.compat.v1.nn.dynamic_rnn`` (a v1 graph and
  session) against a real Keras LSTM, with TF1's ``forget_bias`` added at run
  time and its state tuple in (c, h) order.

Every batch has mixed lengths where the runtime honours them.  The GRU's
equivalents are in ``tests/test_gru_cells.py``.

Shape legend: B batch, T time, H hidden, D directions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from shared import layout, reference
from shared.core.compare import max_abs_diff
from shared.reference.cells import reverse_real

ATOL = 1e-5  # float32 runtimes against the float64 reference
LENGTHS = [4, 1, 3]  # mixed lengths, a length-1 row among them


def assert_close(name, actual, expected, atol=ATOL):
    diff, where = max_abs_diff(actual, expected)
    assert diff <= atol, f"{name}: largest difference {diff:.3g} at {where} > {atol}"


def random_keras_lstm(rng, inputs, hidden):
    """Random Keras LSTM arrays: kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)."""
    return (
        rng.uniform(-0.5, 0.5, (inputs, 4 * hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, (hidden, 4 * hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, 4 * hidden).astype(np.float32),
    )


def sequence(rng, inputs, hidden, steps=4):
    """x (B, T, in) with padding that holds noise, and a nonzero (h0, c0), each (B, H)."""
    x = rng.normal(size=(len(LENGTHS), steps, inputs)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (len(LENGTHS), hidden)).astype(np.float32)
    c0 = rng.uniform(-1.0, 1.0, (len(LENGTHS), hidden)).astype(np.float32)
    return x, h0, c0


def real_steps(x, lengths):
    """(B, T, 1) booleans: is step t a real token of row b?"""
    return (np.arange(x.shape[1]) < np.asarray(lengths)[:, None])[:, :, None]


def run_keras_lstm(keras_arrays, x, lengths, h0, c0):
    """A real keras.layers.LSTM holding (kernel, recurrent_kernel, bias), masked by length.

    Returns (outputs (B, T, H) with zeros at padding, h (B, H), c (B, H)).
    """
    import keras

    lstm = keras.layers.LSTM(h0.shape[1], return_sequences=True, return_state=True)
    lstm.build(x.shape)
    lstm.set_weights([np.asarray(a) for a in keras_arrays])
    mask = real_steps(x, lengths)[:, :, 0]  # (B, T); passed explicitly beside initial_state
    out, h, c = (keras.ops.convert_to_numpy(a)
                 for a in lstm(x, initial_state=[h0, c0], mask=mask))
    return out * real_steps(x, lengths), h, c  # Keras repeats the last output at padding


# ---- ONNX: one LSTM node, run by ONNX Runtime and by ONNX's reference evaluator ----

def onnx_lstm_model(W, R, B, direction):
    """A one-node ONNX model: LSTM over X (T, B, in) with sequence_lens, initial_h, initial_c."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnx.reference")
    from onnx import TensorProto, helper, numpy_helper

    H = R.shape[-1]
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c"],
        ["Y", "Y_h", "Y_c"], hidden_size=H, direction=direction,
    )
    state = [None, "B", H]  # (D, B, H)
    graph = helper.make_graph(
        [node], "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", W.shape[-1]]),
         helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, state),
         helper.make_tensor_value_info("initial_c", TensorProto.FLOAT, state)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", None, "B", H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, state),
         helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, state)],
        initializer=[numpy_helper.from_array(a.astype(np.float32), name)
                     for name, a in (("W", W), ("R", R), ("B", B))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def run_onnx(runtime, model, x, lengths, h0s, c0s):
    """(Y (T, D, B, H), Y_h (D, B, H), Y_c (D, B, H)) of the one-node model, from x (B, T, in)."""
    feeds = {"X": x.transpose(1, 0, 2).copy(), "sequence_lens": np.asarray(lengths, np.int32),
             "initial_h": h0s, "initial_c": c0s}
    if runtime == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


def stack_directions(onnx_arrays):
    """[(W, R, B) per direction] -> W (D, 4H, in), R (D, 4H, H), B (D, 8H), as ONNX stores them."""
    return tuple(np.stack([arrays[i] for arrays in onnx_arrays]) for i in range(3))


# ONNX's reference evaluator ignores sequence_lens (onnx/reference/ops/op_lstm.py takes the
# argument, marked unused, and never reads it), so it is given full rows only;
# ONNX Runtime honours it and gets rows of mixed lengths.
RUNTIMES = [pytest.param("onnxruntime", LENGTHS, id="onnxruntime-mixed-lengths"),
            pytest.param("onnx.reference", [4, 4, 4], id="onnx.reference-full-rows")]
DIRECTIONS = ["forward", "bidirectional"]


@pytest.mark.parametrize(("runtime", "lengths"), RUNTIMES)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_keras_lstm_to_onnx_runs_in_onnx_runtimes(rng, direction, runtime, lengths):
    inputs, hidden = 4, 5
    x, h0, c0 = sequence(rng, inputs, hidden)
    per_direction = [random_keras_lstm(rng, inputs, hidden)
                     for _ in range(2 if direction == "bidirectional" else 1)]
    W, R, B = stack_directions([layout.keras_lstm_to_onnx(*a) for a in per_direction])
    D = len(per_direction)
    Y, Y_h, Y_c = run_onnx(runtime, onnx_lstm_model(W, R, B, direction), x, lengths,
                           np.stack([h0] * D), np.stack([c0] * D))
    assert Y.shape == (x.shape[1], D, len(LENGTHS), hidden), "ONNX's Y is (T, D, B, H)"
    real = real_steps(x, lengths).transpose(1, 0, 2)  # (T, B, 1)
    for d, arrays in enumerate(per_direction):
        params = layout.keras_lstm_to_torch(*arrays)
        out_ref, (h_ref, c_ref) = reference.lstm_layer(x, lengths, h0, c0, *params,
                                                       reverse=d == 1)
        assert_close(f"{runtime} Y direction {d}", Y[:, d] * real, out_ref.transpose(1, 0, 2))
        assert_close(f"{runtime} Y_h direction {d}", Y_h[d], h_ref)
        assert_close(f"{runtime} Y_c direction {d}", Y_c[d], c_ref)
    # Teeth: Keras's i, f, c, o blocks written as they are, read by ONNX as i, o, f, c.
    kernel, recurrent_kernel, bias = per_direction[0]
    unordered = stack_directions(
        [(kernel.T, recurrent_kernel.T, np.concatenate([bias, np.zeros_like(bias)]))] * D)
    wrong = run_onnx(runtime, onnx_lstm_model(*unordered, direction), x, lengths,
                     np.stack([h0] * D), np.stack([c0] * D))
    assert max_abs_diff(wrong[1], Y_h)[0] > 100 * ATOL, "the gate reorder must matter here"


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_onnx_lstm_to_keras_runs_a_real_onnx_node_in_keras(rng, direction):
    inputs, hidden = 3, 5
    x, h0, c0 = sequence(rng, inputs, hidden)
    D = 2 if direction == "bidirectional" else 1
    W = rng.uniform(-0.5, 0.5, (D, 4 * hidden, inputs)).astype(np.float32)
    R = rng.uniform(-0.5, 0.5, (D, 4 * hidden, hidden)).astype(np.float32)
    B = rng.uniform(-0.5, 0.5, (D, 8 * hidden)).astype(np.float32)  # Wb and Rb both nonzero
    Y, Y_h, Y_c = run_onnx("onnxruntime", onnx_lstm_model(W, R, B, direction), x, LENGTHS,
                           np.stack([h0] * D), np.stack([c0] * D))
    for d in range(D):
        keras_arrays = layout.onnx_lstm_to_keras(W[d], R[d], B[d])
        lengths = np.array(LENGTHS)
        steps = x if d == 0 else reverse_real(x, lengths)  # each row's real steps backwards
        out, h, c = run_keras_lstm(keras_arrays, steps, lengths, h0, c0)
        if d == 1:
            out = reverse_real(out, lengths)  # back to input order, as ONNX writes Y
        assert_close(f"Keras (from ONNX) outputs vs ONNX Y, direction {d}", out,
                     Y[:, d].transpose(1, 0, 2))
        assert_close(f"Keras (from ONNX) h vs ONNX Y_h, direction {d}", h, Y_h[d])
        assert_close(f"Keras (from ONNX) c vs ONNX Y_c, direction {d}", c, Y_c[d])


# ---- TF1: LSTMCell and BasicLSTMCell in tf.compat.v1.nn.dynamic_rnn ----

def tf1_cells():
    """TensorFlow and the TF1 cell module, or a skip that says why they are not here."""
    tf = pytest.importorskip("tensorflow")
    try:
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    except ImportError as error:  # pragma: no cover - depends on the TensorFlow build
        pytest.skip(f"TF1 cells (tensorflow.python.keras.layers.legacy_rnn) are not in this "
                    f"TensorFlow {tf.__version__}: {error}")
    return tf, rnn_cell_impl


def run_tf1_lstm(cell_name, forget_bias, x, lengths, h0, c0, arrays=None, rng=None):
    """A real TF1 cell in dynamic_rnn, holding ``arrays`` (kernel, bias) or random ones.

    Returns ((kernel (in + H, 4H), bias (4H,)) as the cell held them,
    outputs (B, T, H) with zeros at padding, h (B, H), c (B, H)).
    """
    tf, rnn_cell_impl = tf1_cells()
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TF1 cells warn that they are deprecated
        cell = getattr(rnn_cell_impl, cell_name)(h0.shape[1], forget_bias=forget_bias)
        # TF1's state tuple is (c, h): c first.
        initial = rnn_cell_impl.LSTMStateTuple(c=tf.constant(c0), h=tf.constant(h0))
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            cell, tf.constant(x), sequence_length=tf.constant(lengths), initial_state=initial,
        )
        # Names such as "rnn/lstm_cell/kernel:0": keep the last part.
        variables = {v.name.split(":")[0].split("/")[-1]: v for v in cell.variables}
        assert set(variables) == {"kernel", "bias"}, sorted(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            if arrays is None:
                arrays = tuple(rng.uniform(-0.5, 0.5, variables[n].shape).astype(np.float32)
                               for n in ("kernel", "bias"))
            for name, value in zip(("kernel", "bias"), arrays, strict=True):
                variables[name].load(value, session)
            out, c, h = session.run([outputs, state.c, state.h])
    return arrays, out, h, c


TF1_CELLS = [pytest.param("LSTMCell", 1.0, id="LSTMCell-forget_bias-1"),
             pytest.param("LSTMCell", -0.7, id="LSTMCell-forget_bias--0.7"),
             pytest.param("BasicLSTMCell", 1.0, id="BasicLSTMCell-forget_bias-1")]


@pytest.mark.parametrize(("cell_name", "forget_bias"), TF1_CELLS)
def test_tf1_lstm_cells_run_as_keras_lstm(rng, cell_name, forget_bias):
    inputs, hidden = 3, 4
    x, h0, c0 = sequence(rng, inputs, hidden)
    (kernel, bias), tf1_out, tf1_h, tf1_c = run_tf1_lstm(cell_name, forget_bias, x, LENGTHS,
                                                         h0, c0, rng=rng)
    keras_arrays = layout.tf1_lstm_to_keras(kernel, bias, forget_bias)
    keras_out, keras_h, keras_c = run_keras_lstm(keras_arrays, x, LENGTHS, h0, c0)
    name = f"TF1 {cell_name}(forget_bias={forget_bias})"
    assert_close(f"{name} outputs vs Keras LSTM", tf1_out, keras_out)
    assert_close(f"{name} h vs Keras LSTM", tf1_h, keras_h)
    assert_close(f"{name} c vs Keras LSTM", tf1_c, keras_c)
    # Teeth: the stored bias lacks forget_bias; converting as if it were 0 is another LSTM.
    _, forgotten_h, _ = run_keras_lstm(layout.tf1_lstm_to_keras(kernel, bias, 0.0), x, LENGTHS,
                                       h0, c0)
    assert max_abs_diff(forgotten_h, tf1_h)[0] > 100 * ATOL, "forget_bias must matter here"


@pytest.mark.parametrize(("cell_name", "forget_bias"), TF1_CELLS)
def test_keras_lstm_to_tf1_runs_keras_weights_in_tf1_cells(rng, cell_name, forget_bias):
    inputs, hidden = 4, 4  # in == H: the kernel's x rows and h rows have the same shape
    x, h0, c0 = sequence(rng, inputs, hidden)
    keras_arrays = random_keras_lstm(rng, inputs, hidden)
    tf1_arrays = layout.keras_lstm_to_tf1(*keras_arrays, forget_bias=forget_bias)
    _, tf1_out, tf1_h, tf1_c = run_tf1_lstm(cell_name, forget_bias, x, LENGTHS, h0, c0,
                                            arrays=tf1_arrays)
    out_ref, (h_ref, c_ref) = reference.lstm_layer(x, LENGTHS, h0, c0,
                                                   *layout.keras_lstm_to_torch(*keras_arrays))
    name = f"TF1 {cell_name}(forget_bias={forget_bias}) from Keras"
    assert_close(f"{name} outputs vs reference", tf1_out, out_ref)
    assert_close(f"{name} h vs reference", tf1_h, h_ref)
    assert_close(f"{name} c vs reference", tf1_c, c_ref)
