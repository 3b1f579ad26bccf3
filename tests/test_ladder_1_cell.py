"""The GRU from the bottom rung: the reference cell, then every converter against the real peers.

The reference GRU (``shared.reference.cells``) is checked by hand for one step,
then against real ``torch.nn.GRU`` and ``keras.layers.GRU`` (``reset_after``
True and False), and each GRU converter of ``shared.layout`` is proven by
running the converted arrays in the target's real layer: PyTorch, Keras, ONNX
Runtime and ONNX's reference evaluator (``linear_before_reset`` 0 and 1), and a
real TF1 ``GRUCell`` in a ``tf.compat.v1`` graph.  Random weights everywhere:
the r and z blocks of a GRU have the same shape, and only different numbers in
each can show that they were swapped.

Shape legend: B batch, T time, H hidden.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared import layout, reference
from shared.core.compare import max_abs_diff

ATOL = 1e-5  # float32 frameworks against the float64 reference
LENGTHS = [4, 1, 3]  # mixed lengths, a length-1 row among them


def assert_close(name, actual, expected, atol=ATOL):
    diff, where = max_abs_diff(actual, expected)
    assert diff <= atol, f"{name}: largest difference {diff:.3g} at {where} > {atol}"


def random_keras_gru(rng, inputs, hidden, reset_after=True):
    """Random Keras GRU arrays: kernel (in, 3H), recurrent_kernel (H, 3H), bias (2, 3H) or (3H,)."""
    bias_shape = (2, 3 * hidden) if reset_after else (3 * hidden,)
    return (
        rng.uniform(-0.5, 0.5, (inputs, 3 * hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, (hidden, 3 * hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, bias_shape).astype(np.float32),
    )


def random_torch_gru(rng, inputs, hidden):
    """Random nn.GRU arrays (3H, in), (3H, H), (3H,), (3H,), with b_ih != b_hh."""
    return (
        rng.uniform(-0.5, 0.5, (3 * hidden, inputs)).astype(np.float32),
        rng.uniform(-0.5, 0.5, (3 * hidden, hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, 3 * hidden).astype(np.float32),
        rng.uniform(-0.5, 0.5, 3 * hidden).astype(np.float32),
    )


def sequence(rng, inputs, hidden, steps=4):
    """x (B, T, in) with padding that holds noise, lengths (B,), a nonzero h0 (B, H)."""
    x = rng.normal(size=(len(LENGTHS), steps, inputs)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (len(LENGTHS), hidden)).astype(np.float32)
    return x, np.array(LENGTHS), h0


def keras_bias_to_reference(kernel, recurrent_kernel, bias):
    """A reset_after=False Keras GRU's arrays in the reference's stacked r, z, n layout."""
    to_torch = lambda a: layout.reorder_gates(a, "keras", "torch", axis=0, cell="gru")  # noqa: E731
    return to_torch(kernel.T), to_torch(recurrent_kernel.T), to_torch(bias), np.zeros_like(bias)


# ---- the reference cell ----

def test_gru_cell_matches_one_step_by_hand():
    # One row, two inputs, one hidden unit: each gate is a single number.
    x, h = [0.5, -1.0], 0.2
    W_ih = [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]]  # rows r, z, n
    W_hh = [0.9, -1.0, 1.1]
    b_ih = [0.01, 0.02, 0.03]
    b_hh = [-0.05, 0.06, -0.07]

    def sigma(v):
        return 1 / (1 + math.exp(-v))

    def from_x(k):
        return W_ih[k][0] * x[0] + W_ih[k][1] * x[1] + b_ih[k]

    r = sigma(from_x(0) + W_hh[0] * h + b_hh[0])
    z = sigma(from_x(1) + W_hh[1] * h + b_hh[1])
    after = (1 - z) * math.tanh(from_x(2) + r * (W_hh[2] * h + b_hh[2])) + z * h
    before = (1 - z) * math.tanh(from_x(2) + W_hh[2] * (r * h) + b_hh[2]) + z * h
    arrays = (np.array([x]), np.array([[h]]), np.array(W_ih), np.array(W_hh)[:, None],
              np.array(b_ih), np.array(b_hh))
    assert_close("reset after", reference.gru_cell(*arrays), [[after]], atol=1e-15)
    assert_close("reset before", reference.gru_cell(*arrays, reset_after=False), [[before]],
                 atol=1e-15)
    assert abs(after - before) > 1e-3  # the two variants are different functions


def test_gru_layer_keeps_the_state_over_padding_and_reads_backwards_from_the_last_token(rng):
    params = random_torch_gru(rng, 3, 4)
    x, lengths, h0 = sequence(rng, 3, 4)
    outputs, h = reference.gru_layer(x, lengths, h0, *params)
    for row, n in enumerate(lengths):
        alone, h_alone = reference.gru_layer(x[row : row + 1, :n], [n], h0[row : row + 1], *params)
        assert_close(f"row {row} outputs", outputs[row, :n], alone[0], atol=1e-12)
        assert_close(f"row {row} h", h[row], h_alone[0], atol=1e-12)
        np.testing.assert_array_equal(outputs[row, n:], 0.0)
    backwards, h_back = reference.gru_layer(x, lengths, h0, *params, reverse=True)
    by_hand = h0[1:2].astype(np.float64)  # row 1 has one real step: x[1, 0] is all it reads
    by_hand = reference.gru_cell(x[1:2, 0], by_hand, *params)
    assert_close("row 1 backward h", h_back[1], by_hand[0], atol=1e-12)
    assert_close("row 1 backward output", backwards[1, 0], by_hand[0], atol=1e-12)
    np.testing.assert_array_equal(backwards[1, 1:], 0.0)


# ---- real layers: nn.GRU and keras.layers.GRU ----

def run_torch_gru(torch_arrays, x, lengths, h0):
    """A real nn.GRU holding (weight_ih, weight_hh, bias_ih, bias_hh), packed by length."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    gru = torch.nn.GRU(x.shape[2], h0.shape[1], batch_first=True)
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    with torch.no_grad():
        for name, array in zip(names, torch_arrays, strict=True):
            getattr(gru, name).copy_(torch.from_numpy(np.asarray(array)))
        packed = pack_padded_sequence(torch.from_numpy(x), torch.tensor(lengths),
                                      batch_first=True, enforce_sorted=False)
        out, h = gru(packed, torch.from_numpy(h0)[None])
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out.numpy(), h[0].numpy()


def run_keras_gru(keras_arrays, x, lengths, h0):
    """A real keras.layers.GRU holding (kernel, recurrent_kernel, bias), masked by length."""
    import keras

    reset_after = np.asarray(keras_arrays[2]).ndim == 2
    gru = keras.layers.GRU(h0.shape[1], return_sequences=True, return_state=True,
                           reset_after=reset_after)
    gru.build(x.shape)
    gru.set_weights([np.asarray(a) for a in keras_arrays])
    mask = np.arange(x.shape[1]) < np.asarray(lengths)[:, None]  # (B, T)
    out, h = gru(x, initial_state=[h0], mask=mask)  # Keras returns [output, h]
    out = keras.ops.convert_to_numpy(out) * mask[:, :, None]  # Keras repeats outputs at padding
    return out, keras.ops.convert_to_numpy(h)


WIDTHS = [pytest.param(5, 5, id="in=H"), pytest.param(3, 5, id="in<H")]


@pytest.mark.parametrize(("inputs", "hidden"), WIDTHS)
def test_keras_gru_weights_run_in_torch_and_torch_weights_in_keras(rng, inputs, hidden):
    x, lengths, h0 = sequence(rng, inputs, hidden)
    keras_arrays = random_keras_gru(rng, inputs, hidden)
    torch_arrays = layout.keras_gru_to_torch(*keras_arrays)
    expected = reference.gru_layer(x, lengths, h0, *torch_arrays)
    for name, k, t, e in zip(("outputs", "h"), run_keras_gru(keras_arrays, x, lengths, h0),
                             run_torch_gru(torch_arrays, x, lengths, h0), expected, strict=True):
        assert_close(f"Keras GRU {name} vs reference", k, e)
        assert_close(f"nn.GRU {name} (converted from Keras) vs reference", t, e)

    torch_arrays = random_torch_gru(rng, inputs, hidden)
    keras_arrays = layout.torch_gru_to_keras(*torch_arrays)
    assert keras_arrays[2].shape == (2, 3 * hidden)
    expected = reference.gru_layer(x, lengths, h0, *torch_arrays)
    for name, t, k, e in zip(("outputs", "h"), run_torch_gru(torch_arrays, x, lengths, h0),
                             run_keras_gru(keras_arrays, x, lengths, h0), expected, strict=True):
        assert_close(f"nn.GRU {name} vs reference", t, e)
        assert_close(f"Keras GRU {name} (converted from PyTorch) vs reference", k, e)


def test_keras_reset_after_false_is_the_reference_reset_before(rng):
    x, lengths, h0 = sequence(rng, 3, 4)
    keras_arrays = random_keras_gru(rng, 3, 4, reset_after=False)
    out, h = run_keras_gru(keras_arrays, x, lengths, h0)
    params = keras_bias_to_reference(*keras_arrays)
    out_ref, h_ref = reference.gru_layer(x, lengths, h0, *params, reset_after=False)
    assert_close("Keras GRU(reset_after=False) outputs", out, out_ref)
    assert_close("Keras GRU(reset_after=False) h", h, h_ref)
    wrong, _ = reference.gru_layer(x, lengths, h0, *params, reset_after=True)
    assert max_abs_diff(out, wrong)[0] > 100 * ATOL, "reset_after must matter here"


def test_r_and_z_not_swapped_is_caught_with_same_shaped_blocks(rng):
    # The keras-team/keras#15915 bug: transposed, but z r h left in place of r z n.
    x, lengths, h0 = sequence(rng, 5, 5)
    kernel, recurrent_kernel, bias = random_keras_gru(rng, 5, 5)
    right = run_torch_gru(layout.keras_gru_to_torch(kernel, recurrent_kernel, bias), x, lengths, h0)
    unswapped = (kernel.T, recurrent_kernel.T, bias[0], bias[1])
    wrong = run_torch_gru(unswapped, x, lengths, h0)
    assert max_abs_diff(wrong[0], right[0])[0] > 100 * ATOL


# ---- the converters on their own: round trips and refusals ----

def test_gru_round_trips_are_exact(rng):
    keras_arrays = random_keras_gru(rng, 3, 5)
    for back, original in zip(layout.torch_gru_to_keras(*layout.keras_gru_to_torch(*keras_arrays)),
                              keras_arrays, strict=True):
        np.testing.assert_array_equal(back, original)
    torch_arrays = random_torch_gru(rng, 3, 5)
    for back, original in zip(layout.keras_gru_to_torch(*layout.torch_gru_to_keras(*torch_arrays)),
                              torch_arrays, strict=True):
        np.testing.assert_array_equal(back, original)  # both biases survive, unlike an LSTM's
    for reset_after, lbr in ((True, 1), (False, 0)):
        keras_arrays = random_keras_gru(rng, 3, 5, reset_after)
        W, R, B = layout.keras_gru_to_onnx(*keras_arrays)
        assert (W.shape, R.shape, B.shape) == ((15, 3), (15, 5), (30,))
        for back, original in zip(layout.onnx_gru_to_keras(W, R, B, lbr), keras_arrays,
                                  strict=True):
            np.testing.assert_array_equal(back, original)
    keras_arrays = random_keras_gru(rng, 3, 5, reset_after=False)
    for back, original in zip(layout.tf1_gru_to_keras(*layout.keras_gru_to_tf1(*keras_arrays)),
                              keras_arrays, strict=True):
        np.testing.assert_array_equal(back, original)


def test_gru_converters_refuse_the_other_reset_and_name_wrong_arguments(rng):
    kernel, recurrent_kernel, bias = random_keras_gru(rng, 3, 5)
    with pytest.raises(ValueError, match=r"reset_after=False.*nn\.GRU resets after it"):
        layout.keras_gru_to_torch(kernel, recurrent_kernel, bias.sum(axis=0))
    with pytest.raises(ValueError, match=r"reset_after=True.*TF1 GRUCell resets before it"):
        layout.keras_gru_to_tf1(kernel, recurrent_kernel, bias)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 3H\) = \(2, 15\)"):
        layout.keras_gru_to_onnx(kernel, recurrent_kernel, bias[:, :12])
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, 3H\) = \(5, 15\)"):
        layout.keras_gru_to_torch(kernel, recurrent_kernel[:4], bias)
    with pytest.raises(ValueError, match=r"kernel must have shape \(in, 3H\).*got \(3, 16\)"):
        layout.keras_gru_to_torch(np.zeros((3, 16)), recurrent_kernel, bias)
    weight_ih, weight_hh, bias_ih, bias_hh = random_torch_gru(rng, 3, 5)
    with pytest.raises(ValueError, match=r"bias_hh must have shape \(3H,\) = \(15,\)"):
        layout.torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh[:5])
    with pytest.raises(ValueError, match="linear_before_reset must be 0 or 1; got 2"):
        layout.onnx_gru_to_keras(weight_ih, weight_hh, np.zeros(30), linear_before_reset=2)
    with pytest.raises(ValueError, match=r"B must have shape \(6H,\) = \(30,\)"):
        layout.onnx_gru_to_keras(weight_ih, weight_hh, np.zeros(15))
    with pytest.raises(ValueError, match=r"candidate_kernel must have shape \(in \+ H, H\)"):
        layout.tf1_gru_to_keras(np.zeros((8, 10)), np.zeros(10), np.zeros((7, 5)), np.zeros(5))
    with pytest.raises(ValueError, match=r"permutation of 'rzn' \(cell='gru'\); got 'zrh'"):
        layout.reorder_gates(np.zeros(6), "zrh", "torch", axis=0, cell="gru")


# ---- real peers: ONNX Runtime, ONNX's reference evaluator, TF1's GRUCell ----

def onnx_gru_model(W, R, B, linear_before_reset, direction):
    """A one-node ONNX model: GRU over X (T, B, in) with sequence_lens and initial_h."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnx.reference")
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(
        "GRU", ["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"],
        hidden_size=R.shape[-1], linear_before_reset=linear_before_reset, direction=direction,
    )
    graph = helper.make_graph(
        [node], "gru",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", W.shape[-1]]),
         helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [None, "B", R.shape[-1]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", None, "B", R.shape[-1]]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [None, "B", R.shape[-1]])],
        initializer=[numpy_helper.from_array(a.astype(np.float32), name)
                     for name, a in (("W", W), ("R", R), ("B", B))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def run_onnx(runtime, model, x, lengths, h0s):
    """(Y (T, D, B, H), Y_h (D, B, H)) of the one-node model, from x (B, T, in)."""
    feeds = {"X": x.transpose(1, 0, 2).copy(), "sequence_lens": lengths.astype(np.int32),
             "initial_h": h0s}
    if runtime == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


# ONNX's reference evaluator ignores sequence_lens (onnx/reference/ops/op_gru.py takes the
# argument, marked unused, and never reads it), so it is given full rows only;
# ONNX Runtime honours it and gets rows of mixed lengths.
RUNTIMES = [pytest.param("onnxruntime", LENGTHS, id="onnxruntime-mixed-lengths"),
            pytest.param("onnx.reference", [4, 4, 4], id="onnx.reference-full-rows")]


@pytest.mark.parametrize(("runtime", "lengths"), RUNTIMES)
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["lbr1", "lbr0"])
def test_keras_gru_to_onnx_runs_in_onnx_runtimes(rng, reset_after, direction, runtime, lengths):
    inputs, hidden = 4, 5
    x, _, h0 = sequence(rng, inputs, hidden)
    lengths = np.array(lengths)
    per_direction = [random_keras_gru(rng, inputs, hidden, reset_after)
                     for _ in range(2 if direction == "bidirectional" else 1)]
    onnx_arrays = [layout.keras_gru_to_onnx(*arrays) for arrays in per_direction]
    W, R, B = (np.stack([arrays[i] for arrays in onnx_arrays]) for i in range(3))  # (D, ...)
    model = onnx_gru_model(W, R, B, int(reset_after), direction)
    Y, Y_h = run_onnx(runtime, model, x, lengths, np.stack([h0] * len(per_direction)))
    real = (np.arange(x.shape[1]) < lengths[:, None]).T  # (T, B)
    for d, arrays in enumerate(per_direction):
        params = (layout.keras_gru_to_torch(*arrays) if reset_after
                  else keras_bias_to_reference(*arrays))
        out_ref, h_ref = reference.gru_layer(x, lengths, h0, *params, reverse=d == 1,
                                             reset_after=reset_after)
        assert_close(f"{runtime} Y direction {d}", Y[:, d] * real[:, :, None],
                     out_ref.transpose(1, 0, 2))
        assert_close(f"{runtime} Y_h direction {d}", Y_h[d], h_ref)
    if reset_after:  # teeth: the node with the other linear_before_reset is another GRU
        other = run_onnx(runtime, onnx_gru_model(W, R, B, 0, direction), x, lengths,
                         np.stack([h0] * len(per_direction)))
        assert max_abs_diff(other[1], Y_h)[0] > 100 * ATOL


def test_tf1_gru_cell_runs_as_keras_reset_after_false(rng):
    tf = pytest.importorskip("tensorflow")
    try:
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    except ImportError as error:  # pragma: no cover - depends on the TensorFlow build
        pytest.skip(f"TF1 cells (legacy_rnn) are not in this TensorFlow: {error}")
    inputs, hidden = 3, 4
    x, lengths, h0 = sequence(rng, inputs, hidden)
    graph = tf.Graph()
    with graph.as_default():
        cell = rnn_cell_impl.GRUCell(hidden)
        outputs, h = tf.compat.v1.nn.dynamic_rnn(
            cell, tf.constant(x), sequence_length=tf.constant(lengths), initial_state=h0,
        )
        # Names such as "rnn/gru_cell/gates/kernel:0": keep the part after the cell's scope.
        variables = {"/".join(v.name.split(":")[0].split("/")[-2:]): v for v in cell.variables}
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf1_arrays = {name: rng.uniform(-0.5, 0.5, v.shape).astype(np.float32)
                          for name, v in variables.items()}
            for name, value in tf1_arrays.items():
                variables[name].load(value, session)
            tf1_out, tf1_h = session.run([outputs, h])
    keras_arrays = layout.tf1_gru_to_keras(
        tf1_arrays["gates/kernel"], tf1_arrays["gates/bias"],
        tf1_arrays["candidate/kernel"], tf1_arrays["candidate/bias"],
    )
    keras_out, keras_h = run_keras_gru(keras_arrays, x, lengths, h0)
    assert_close("TF1 GRUCell outputs vs Keras GRU(reset_after=False)", tf1_out, keras_out)
    assert_close("TF1 GRUCell h vs Keras GRU(reset_after=False)", tf1_h, keras_h)
    back = layout.keras_gru_to_tf1(*keras_arrays)
    for name, array in zip(("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"),
                           back, strict=True):
        np.testing.assert_array_equal(array, tf1_arrays[name], err_msg=name)
