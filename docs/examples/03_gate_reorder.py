"""Which gate is which block?  TF1, Keras, PyTorch and ONNX stack the four gates differently.

Answers "my converted weights run but give nonsense": each framework stacks the
gates in its own order and keeps its own biases.

    framework   gate blocks      biases
    Keras       i f c o          one
    PyTorch     i f g o          two (b_ih + b_hh)
    TF1         i j f o          one, plus forget_bias added to f at run time
    ONNX        i o f c          two, end to end in B = [Wb, Rb]

(c in Keras and ONNX, j in TF1 and g in PyTorch all name the candidate cell.)

Each framework's step is written out by hand in NumPy from its own
documentation, then the converters of ``shared.layout`` are shown to make the
steps agree.  Where TensorFlow still ships the TF1 ``LSTMCell`` (privately, in
``tensorflow.python.keras``), the hand-written TF1 step and its (c, h) state
tuple are also checked against the real cell; where it does not, the script
says "SKIPPED: ..." and why, and the test suite reports the example as skipped.

Run: python docs/examples/03_gate_reorder.py

Shapes: B batch, E input width, H hidden.
"""

import os
import sys
import warnings
from pathlib import Path

# As in the test suite: fewer TensorFlow log lines, and oneDNN off for repeatable numbers.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from shared.core.compare import STATE_ATOL, assert_close
from shared.layout import (
    GATE_ORDER,
    keras_lstm_to_onnx,
    keras_lstm_to_tf1,
    onnx_lstm_to_keras,
    reorder_gates,
    tf1_lstm_to_keras,
)

B, E, H = 3, 4, 5
FORGET_BIAS = 1.0  # TF1's default


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def keras_step(x, h, c, kernel, recurrent_kernel, bias):
    """Keras LSTMCell: z = x @ kernel + h @ recurrent_kernel + bias, blocks i, f, c, o."""
    z = x @ kernel + h @ recurrent_kernel + bias                           # (B, 4H)
    i, f, g, o = np.split(z, 4, axis=1)                                    # (B, H) each
    c_next = sigmoid(f) * c + sigmoid(i) * np.tanh(g)                      # (B, H)
    return sigmoid(o) * np.tanh(c_next), c_next


def tf1_step(x, state, kernel, bias, forget_bias):
    """TF1 LSTMCell: state is (c, h); z = [x, h] @ kernel + bias, blocks i, j, f, o."""
    c, h = state                                                           # c FIRST in TF1
    z = np.concatenate([x, h], axis=1) @ kernel + bias                     # (B, 4H)
    i, j, f, o = np.split(z, 4, axis=1)                                    # (B, H) each
    c_next = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)        # (B, H)
    h_next = np.tanh(c_next) * sigmoid(o)                                  # (B, H)
    return h_next, (c_next, h_next)


def onnx_step(x, h, c, W, R, B_):
    """ONNX LSTM: z = x W^T + Wb + h R^T + Rb, blocks i, o, f, c."""
    Wb, Rb = np.split(B_, 2)                                               # (4H,) each
    z = x @ W.T + Wb + h @ R.T + Rb                                        # (B, 4H)
    i, o, f, g = np.split(z, 4, axis=1)                                    # (B, H) each
    c_next = sigmoid(f) * c + sigmoid(i) * np.tanh(g)                      # (B, H)
    return sigmoid(o) * np.tanh(c_next), c_next


def show_reorder() -> None:
    labelled = np.repeat(np.array(list("ijfo")), 2)                        # TF1 blocks, H = 2
    as_keras = reorder_gates(labelled, "tf1", "keras", axis=0)
    as_onnx = reorder_gates(labelled, "tf1", "onnx", axis=0)
    print("GATE_ORDER (canonical letters, g = candidate):", GATE_ORDER)
    print("TF1 blocks", "".join(labelled[::2]), "-> Keras", "".join(as_keras[::2]),
          "-> ONNX", "".join(as_onnx[::2]), "(j is TF1's name for the candidate)")
    assert "".join(as_keras[::2]) == "ifjo" and "".join(as_onnx[::2]) == "iofj"


def tf1_to_keras(rng, x, h, c) -> tuple[np.ndarray, ...]:
    kernel = rng.uniform(-0.5, 0.5, (E + H, 4 * H))                        # (E + H, 4H) fused
    bias = rng.uniform(-0.5, 0.5, 4 * H)                                   # (4H,)
    h_tf1, (c_tf1, _) = tf1_step(x, (c, h), kernel, bias, FORGET_BIAS)

    keras_weights = tf1_lstm_to_keras(kernel, bias, forget_bias=FORGET_BIAS)
    print("tf1_lstm_to_keras: fused", kernel.shape, "->",
          [w.shape for w in keras_weights], "= kernel, recurrent_kernel, bias")
    h_k, c_k = keras_step(x, h, c, *keras_weights)
    assert_close("TF1 -> Keras h", h_k, h_tf1, STATE_ATOL)
    assert_close("TF1 -> Keras c", c_k, c_tf1, STATE_ATOL)

    # Forgetting forget_bias: the stored TF1 bias does not include it.
    h_bad, _ = keras_step(x, h, c, *tf1_lstm_to_keras(kernel, bias, forget_bias=0.0))
    assert np.abs(h_bad - h_tf1).max() > 1e-2
    print(f"forgetting forget_bias={FORGET_BIAS} moves h by {np.abs(h_bad - h_tf1).max():.3f}")

    back_kernel, back_bias = keras_lstm_to_tf1(*keras_weights, forget_bias=FORGET_BIAS)
    assert_close("Keras -> TF1 kernel round trip", back_kernel, kernel, 1e-12)
    assert_close("Keras -> TF1 bias round trip", back_bias, bias, 1e-12)
    return keras_weights


def keras_to_onnx(keras_weights, x, h, c) -> None:
    W, R, B_ = keras_lstm_to_onnx(*keras_weights)                          # (4H, E), (4H, H), (8H,)
    print("keras_lstm_to_onnx ->", W.shape, R.shape, B_.shape, "= W, R, B (add W[None] for D)")
    h_k, c_k = keras_step(x, h, c, *keras_weights)
    h_o, c_o = onnx_step(x, h, c, W, R, B_)
    assert_close("Keras -> ONNX h", h_o, h_k, STATE_ATOL)
    assert_close("Keras -> ONNX c", c_o, c_k, STATE_ATOL)
    back = onnx_lstm_to_keras(W, R, B_)
    names = ("kernel", "recurrent_kernel", "bias")
    for name, got, expected in zip(names, back, keras_weights, strict=True):
        assert_close(f"ONNX -> Keras {name}", got, expected, 1e-12)
    # Skipping the reorder (ONNX's i, o, f, c read as i, f, c, o) runs and is wrong.
    h_bad, _ = keras_step(x, h, c, W.T, R.T, B_[: 4 * H] + B_[4 * H :])
    assert np.abs(h_bad - h_k).max() > 1e-2


def real_tf1_cell(rng, x, h, c) -> None:
    """Check tf1_step and the (c, h) order against TensorFlow's own TF1 LSTMCell."""
    try:
        import tensorflow as tf
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    except ImportError as error:
        # A visible skip: tests/test_docs_examples.py turns this line into pytest.skip.
        print(f"SKIPPED: the NumPy TF1 step was not checked against a real TF1 LSTMCell: "
              f"tensorflow.python.keras.layers.legacy_rnn is not importable here ({error})")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TF1 cell warns that it is deprecated
        cell = rnn_cell_impl.LSTMCell(H, forget_bias=FORGET_BIAS)
        c_tf, h_tf = tf.constant(c, tf.float32), tf.constant(h, tf.float32)  # (B, H) each
        state = rnn_cell_impl.LSTMStateTuple(c=c_tf, h=h_tf)
        cell(tf.constant(x, tf.float32), state)                           # builds kernel and bias
        kernel = rng.uniform(-0.5, 0.5, (E + H, 4 * H))                    # (E + H, 4H)
        bias = rng.uniform(-0.5, 0.5, 4 * H)                               # (4H,)
        cell.weights[0].assign(kernel)
        cell.weights[1].assign(bias)
        output, new_state = cell(tf.constant(x, tf.float32), state)
    assert new_state._fields == ("c", "h"), "TF1's LSTMStateTuple is (c, h): c first"
    h_np, (c_np, _) = tf1_step(x, (c, h), kernel, bias, FORGET_BIAS)
    assert_close("TF1 cell new c = state[0]", new_state[0], c_np, STATE_ATOL)
    assert_close("TF1 cell new h = state[1]", new_state[1], h_np, STATE_ATOL)
    assert_close("TF1 cell output is h", output, new_state.h, 0.0)
    print("TensorFlow's TF1 LSTMCell: state", new_state._fields, "matches the NumPy TF1 step")


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, E))                                        # (B, E)
    h = rng.uniform(-0.9, 0.9, (B, H))                                     # (B, H)
    c = rng.uniform(-2.0, 2.0, (B, H))                                     # (B, H)
    show_reorder()
    keras_weights = tf1_to_keras(rng, x, h, c)
    keras_to_onnx(keras_weights, x, h, c)
    real_tf1_cell(rng, x, h, c)


if __name__ == "__main__":
    main()
