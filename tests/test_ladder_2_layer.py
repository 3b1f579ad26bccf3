"""The framework converters (shared.layout.gates, re-exported by shared.layout): round trips,
real frameworks, written-out equations.

A converter is proven three ways: converting there and back gives the same
arrays; the converted arrays make a real ``torch.nn.LSTM`` and a real
``keras.layers.LSTM`` compute what the NumPy reference computes; and for TF1 and
ONNX the equations from their documentation are written out here by hand (the
real TF1 cells and ONNX runtimes run the converted arrays in
``tests/test_gates_peers.py``).

Shape legend: B batch, T time, H hidden, V vocabulary.
"""

import os

import numpy as np
import pytest

from shared import layout, reference
from tests.support import random_torch

# float32 frameworks against the float64 reference: a few units in the 7th digit.
ATOL = 1e-5


def assert_close(name, actual, expected, atol=ATOL):
    """Fail naming the tensor and its largest difference."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    largest = float(np.max(np.abs(actual - expected), initial=0.0))
    assert largest <= atol, f"{name}: largest difference {largest:.3g} > {atol}"


def largest_difference(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))


def random_keras(rng, inputs, hidden):
    """Random Keras LSTM arrays: kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)."""
    return (
        rng.uniform(-0.5, 0.5, (inputs, 4 * hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, (hidden, 4 * hidden)).astype(np.float32),
        rng.uniform(-0.5, 0.5, 4 * hidden).astype(np.float32),
    )


def random_sequence(rng, inputs, hidden, batch=3, steps=4):
    """x (B, T, in) and a nonzero initial (h0, c0), each (B, H); all rows full length."""
    x = rng.normal(size=(batch, steps, inputs)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (batch, hidden)).astype(np.float32)
    c0 = rng.uniform(-0.5, 0.5, (batch, hidden)).astype(np.float32)
    return x, h0, c0


def run_reference(torch_arrays, x, h0, c0):
    lengths = np.full(x.shape[0], x.shape[1])  # (B,)
    outputs, (h, c) = reference.lstm_layer(x, lengths, h0, c0, *torch_arrays)
    return outputs, h, c


def run_torch(torch_arrays, x, h0, c0):
    """A real torch.nn.LSTM loaded with (weight_ih, weight_hh, bias_ih, bias_hh)."""
    import torch

    hidden = h0.shape[1]
    lstm = torch.nn.LSTM(x.shape[2], hidden, batch_first=True)
    with torch.no_grad():
        for name, array in zip(
            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), torch_arrays, strict=True
        ):
            getattr(lstm, name).copy_(torch.from_numpy(np.asarray(array)))
        outputs, (h, c) = lstm(
            torch.from_numpy(x), (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None])
        )
    return outputs.numpy(), h[0].numpy(), c[0].numpy()


def run_keras(keras_arrays, x, h0, c0):
    """A real keras.layers.LSTM loaded with (kernel, recurrent_kernel, bias)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    lstm = keras.layers.LSTM(h0.shape[1], return_sequences=True, return_state=True)
    lstm.build(x.shape)
    lstm.set_weights(list(keras_arrays))
    outputs, h, c = lstm(x, initial_state=[h0, c0])  # Keras returns (outputs, h, c)
    return tuple(keras.ops.convert_to_numpy(a) for a in (outputs, h, c))


WIDTHS = [pytest.param(5, 5, id="in=H"), pytest.param(3, 5, id="in<H")]


@pytest.mark.parametrize(("inputs", "hidden"), WIDTHS)
def test_keras_to_torch_runs_keras_weights_in_torch(rng, inputs, hidden):
    keras_arrays = random_keras(rng, inputs, hidden)
    x, h0, c0 = random_sequence(rng, inputs, hidden)
    torch_arrays = layout.keras_lstm_to_torch(*keras_arrays)
    expected = run_reference(torch_arrays, x, h0, c0)
    for name, k, t, e in zip(
        ("outputs", "h", "c"),
        run_keras(keras_arrays, x, h0, c0),
        run_torch(torch_arrays, x, h0, c0),
        expected,
        strict=True,
    ):
        assert_close(f"Keras {name} vs reference", k, e)
        assert_close(f"torch {name} vs reference", t, e)


@pytest.mark.parametrize(("inputs", "hidden"), WIDTHS)
def test_torch_to_keras_runs_torch_weights_in_keras(rng, inputs, hidden):
    torch_arrays = random_torch(rng, inputs, hidden)
    x, h0, c0 = random_sequence(rng, inputs, hidden)
    keras_arrays = layout.torch_lstm_to_keras(*torch_arrays)
    expected = run_reference(torch_arrays, x, h0, c0)
    for name, t, k, e in zip(
        ("outputs", "h", "c"),
        run_torch(torch_arrays, x, h0, c0),
        run_keras(keras_arrays, x, h0, c0),
        expected,
        strict=True,
    ):
        assert_close(f"torch {name} vs reference", t, e)
        assert_close(f"Keras {name} vs reference", k, e)


def test_swapped_kernels_pass_shape_checks_but_fail_the_comparison(rng):
    # With in == H the input and recurrent kernels have the same shape, so only
    # the numbers can tell them apart: the parity tests above must notice a swap.
    kernel, recurrent_kernel, bias = random_keras(rng, 5, 5)
    x, h0, c0 = random_sequence(rng, 5, 5)
    keras_outputs = run_keras((kernel, recurrent_kernel, bias), x, h0, c0)[0]
    swapped = layout.keras_lstm_to_torch(recurrent_kernel, kernel, bias)
    assert largest_difference(run_torch(swapped, x, h0, c0)[0], keras_outputs) > 100 * ATOL

    weight_ih, weight_hh, bias_ih, bias_hh = random_torch(rng, 5, 5)
    torch_outputs = run_torch((weight_ih, weight_hh, bias_ih, bias_hh), x, h0, c0)[0]
    swapped = layout.torch_lstm_to_keras(weight_hh, weight_ih, bias_ih, bias_hh)
    assert largest_difference(run_keras(swapped, x, h0, c0)[0], torch_outputs) > 100 * ATOL


def tf1_step(x, h, c, kernel, bias, forget_bias):
    """TF1 LSTMCell / BasicLSTMCell, as its source writes it."""
    gates = np.concatenate([x, h], axis=1) @ kernel + bias  # (B, 4H)
    i, j, f, o = np.split(gates, 4, axis=1)
    c_next = reference.sigmoid(f + forget_bias) * c + reference.sigmoid(i) * np.tanh(j)
    return reference.sigmoid(o) * np.tanh(c_next), c_next


def onnx_step(x, h, c, W, R, B):
    """ONNX LSTM (default activations, no peepholes), as its operator spec writes it."""
    hidden = R.shape[1]
    gates = x @ W.T + h @ R.T + B[: 4 * hidden] + B[4 * hidden :]  # (B, 4H)
    i, o, f, g = np.split(gates, 4, axis=1)
    c_next = reference.sigmoid(f) * c + reference.sigmoid(i) * np.tanh(g)
    return reference.sigmoid(o) * np.tanh(c_next), c_next


def random_state(rng, inputs, hidden, batch=3):
    return (
        rng.normal(size=(batch, inputs)),
        rng.uniform(-0.5, 0.5, (batch, hidden)),
        rng.uniform(-0.5, 0.5, (batch, hidden)),
    )


@pytest.mark.parametrize("forget_bias", [0.0, 1.0, -0.7])
@pytest.mark.parametrize(("inputs", "hidden"), WIDTHS)
def test_tf1_conversion_matches_the_tf1_equations(rng, inputs, hidden, forget_bias):
    kernel = rng.uniform(-0.5, 0.5, (inputs + hidden, 4 * hidden))  # (in + H, 4H)
    bias = rng.uniform(-0.5, 0.5, 4 * hidden)  # (4H,)
    x, h, c = random_state(rng, inputs, hidden)
    torch_arrays = layout.keras_lstm_to_torch(*layout.tf1_lstm_to_keras(kernel, bias, forget_bias))
    got = reference.lstm_cell(x, h, c, *torch_arrays)
    expected = tf1_step(x, h, c, kernel, bias, forget_bias)
    for name, g, e in zip(("h", "c"), got, expected, strict=True):
        assert_close(f"TF1 {name}", g, e, atol=1e-12)  # float64 on both sides


@pytest.mark.parametrize(("inputs", "hidden"), WIDTHS)
def test_onnx_conversion_matches_the_onnx_equations(rng, inputs, hidden):
    W = rng.uniform(-0.5, 0.5, (4 * hidden, inputs))
    R = rng.uniform(-0.5, 0.5, (4 * hidden, hidden))
    B = rng.uniform(-0.5, 0.5, 8 * hidden)
    x, h, c = random_state(rng, inputs, hidden)
    torch_arrays = layout.keras_lstm_to_torch(*layout.onnx_lstm_to_keras(W, R, B))
    got = reference.lstm_cell(x, h, c, *torch_arrays)
    for name, g, e in zip(("h", "c"), got, onnx_step(x, h, c, W, R, B), strict=True):
        assert_close(f"ONNX {name}", g, e, atol=1e-12)  # float64 on both sides


def test_reorder_gates_moves_whole_blocks():
    letters = np.array(list("iijjffoo"))  # TF1 order, H = 2
    assert "".join(layout.reorder_gates(letters, "tf1", "torch", axis=0)) == "iiffjjoo"
    onnx = np.array([list("iofc")] * 2)  # (2, 4H) with H = 1, gates along axis 1
    assert ["".join(row) for row in layout.reorder_gates(onnx, "onnx", "ifgo", axis=-1)] == [
        "ifco",
        "ifco",
    ]


@pytest.mark.parametrize("src", [*layout.GATE_ORDER, "gofi"])
@pytest.mark.parametrize("dst", [*layout.GATE_ORDER, "ogif"])
def test_reorder_gates_round_trips_exactly(rng, src, dst):
    array = rng.normal(size=(3, 12, 2)).astype(np.float32)
    there = layout.reorder_gates(array, src, dst, axis=1)
    np.testing.assert_array_equal(layout.reorder_gates(there, dst, src, axis=1), array)


def test_reorder_gates_errors(rng):
    with pytest.raises(ValueError, match="length 10 along axis 0"):
        layout.reorder_gates(np.zeros(10), "tf1", "torch", axis=0)
    for order in ("pytorch", "ifg", "iffo", "abcd"):
        with pytest.raises(ValueError, match="src must be one of keras, torch, tf1, onnx"):
            layout.reorder_gates(np.zeros(8), order, "torch", axis=0)
    with pytest.raises(ValueError, match="dst must be"):
        layout.reorder_gates(np.zeros(8), "torch", "xyzw", axis=0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        layout.reorder_gates(np.zeros((4, 8)), "torch", "tf1", axis=2)


def test_keras_torch_round_trips(rng):
    keras_arrays = random_keras(rng, 3, 5)
    torch_arrays = layout.keras_lstm_to_torch(*keras_arrays)
    np.testing.assert_array_equal(torch_arrays[3], np.zeros(20, np.float32))
    for name, back, original in zip(
        ("kernel", "recurrent_kernel", "bias"),
        layout.torch_lstm_to_keras(*torch_arrays),
        keras_arrays,
        strict=True,
    ):
        np.testing.assert_array_equal(back, original, err_msg=name)

    weight_ih, weight_hh, bias_ih, bias_hh = random_torch(rng, 3, 5)
    back = layout.keras_lstm_to_torch(
        *layout.torch_lstm_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)
    )
    np.testing.assert_array_equal(back[0], weight_ih)
    np.testing.assert_array_equal(back[1], weight_hh)
    # PyTorch only ever uses the sum of its two biases; Keras keeps only the sum.
    np.testing.assert_array_equal(back[2], bias_ih + bias_hh)
    np.testing.assert_array_equal(back[3], np.zeros_like(bias_hh))


def test_tf1_keras_round_trips(rng):
    keras_arrays = random_keras(rng, 3, 5)
    exact = layout.tf1_lstm_to_keras(*layout.keras_lstm_to_tf1(*keras_arrays, 0.0), 0.0)
    for back, original in zip(exact, keras_arrays, strict=True):
        np.testing.assert_array_equal(back, original)
    # With forget_bias != 0 the forget bias goes through b - 1 + 1 in float32, which
    # rounds b to the float32 spacing near |b - 1| (about 1.2e-7): that is all that may differ.
    kernel, recurrent_kernel, bias = layout.tf1_lstm_to_keras(
        *layout.keras_lstm_to_tf1(*keras_arrays, 1.0), 1.0
    )
    np.testing.assert_array_equal(kernel, keras_arrays[0])
    np.testing.assert_array_equal(recurrent_kernel, keras_arrays[1])
    assert_close("bias", bias, keras_arrays[2], atol=float(np.spacing(np.float32(2.0))))

    tf1_kernel = rng.normal(size=(8, 20)).astype(np.float32)  # (in + H, 4H) with in = 3, H = 5
    tf1_bias = rng.normal(size=20).astype(np.float32)
    kernel, bias = layout.keras_lstm_to_tf1(
        *layout.tf1_lstm_to_keras(tf1_kernel, tf1_bias, 0.0), 0.0
    )
    np.testing.assert_array_equal(kernel, tf1_kernel)
    np.testing.assert_array_equal(bias, tf1_bias)


def test_onnx_keras_round_trips(rng):
    keras_arrays = random_keras(rng, 3, 5)
    W, R, B = layout.keras_lstm_to_onnx(*keras_arrays)
    assert (W.shape, R.shape, B.shape) == ((20, 3), (20, 5), (40,))
    np.testing.assert_array_equal(B[20:], np.zeros(20, np.float32))
    for back, original in zip(layout.onnx_lstm_to_keras(W, R, B), keras_arrays, strict=True):
        np.testing.assert_array_equal(back, original)

    W, R, B = (rng.normal(size=shape).astype(np.float32) for shape in ((20, 3), (20, 5), (40,)))
    W2, R2, B2 = layout.keras_lstm_to_onnx(*layout.onnx_lstm_to_keras(W, R, B))
    np.testing.assert_array_equal(W2, W)
    np.testing.assert_array_equal(R2, R)
    np.testing.assert_array_equal(B2, np.concatenate([B[:20] + B[20:], np.zeros(20, np.float32)]))


def test_converters_name_the_wrong_argument(rng):
    kernel, recurrent_kernel, bias = random_keras(rng, 3, 5)
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, 4H\) = \(5, 20\)"):
        layout.keras_lstm_to_torch(kernel, recurrent_kernel[:4], bias)
    with pytest.raises(ValueError, match=r"bias must have shape \(4H,\) = \(20,\).*got \(16,\)"):
        layout.keras_lstm_to_onnx(kernel, recurrent_kernel, bias[:16])
    with pytest.raises(ValueError, match=r"kernel must have shape \(in, 4H\).*got \(3, 18\)"):
        layout.keras_lstm_to_tf1(kernel[:, :18], recurrent_kernel, bias)
    weight_ih, weight_hh, bias_ih, bias_hh = random_torch(rng, 3, 5)
    with pytest.raises(ValueError, match=r"bias_hh must have shape \(4H,\) = \(20,\)"):
        layout.torch_lstm_to_keras(weight_ih, weight_hh, bias_ih, bias_hh[:5])
    with pytest.raises(ValueError, match=r"kernel must have shape \(in \+ H, 4H\)"):
        layout.tf1_lstm_to_keras(kernel[:, :20][:3, :], bias, 1.0)  # 3 rows but H = 5
    with pytest.raises(ValueError, match=r"B must have shape \(8H,\) = \(40,\)"):
        layout.onnx_lstm_to_keras(weight_ih, weight_hh, bias_ih)
