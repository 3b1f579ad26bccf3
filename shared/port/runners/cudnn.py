"""Run a Keras 2 CuDNNLSTM or CuDNNGRU as cuDNN computed it, in NumPy, for ``--check``.

Keras 2 never multiplied by a CuDNN layer's variables itself.  It built one
params buffer for cuDNN (``cudnn_recurrent.py``, ``_canonical_to_params``): each
gate's slice of the kernel, then of the recurrent kernel, flattened, in cuDNN's
gate order, then the input biases and the recurrent biases the same way:

    CuDNNLSTM   kernel_i, _f, _c, _o | recurrent_kernel_i, _f, _c, _o | bias_i_i ... | bias_i ...
    CuDNNGRU    kernel_r, _z, _h | recurrent_kernel_r, _z, _h | bias_r_i, _z_i, _h_i | bias_r ...

(Keras's columns stack z, r, h for a GRU; cuDNN wants r, z, h.)  cuDNN reads each
weight region back as a row-major (H, in) or (H, H) matrix W and computes W @ x
(TensorFlow's ``cudnn_rnn_params_to_canonical`` reads it so).  Here the buffer is
built as Keras 2 built it and read region by region as cuDNN reads it; the gate
math is cuDNN's, which is ``shared.reference``'s (σ/tanh; the GRU resets after the
recurrent product).  This is a second derivation of the layout, independent of
the port's (``canonical.from_cudnn``, gate slice by gate slice), so a check of one
against the other can fail.  Masking and directions as ``runners.keras2``.

Shape legend: B batch, T steps, H hidden.
"""

from __future__ import annotations

import numpy as np

from shared.port.runners.keras2 import run_directions
from shared.reference.cells import gru_cell, lstm_cell

# Keras's column blocks that cuDNN takes, in cuDNN's gate order.
CUDNN_ORDER = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}  # LSTM i f c o; GRU r, z, h of z r h


def params(cell: str, kernel: np.ndarray, recurrent_kernel: np.ndarray,
           bias: np.ndarray) -> np.ndarray:
    """The flat params buffer Keras 2 gave cuDNN for these variables."""
    H = recurrent_kernel.shape[0]
    gates = CUDNN_ORDER[cell]
    count = len(gates)
    pieces = [kernel[:, j * H : (j + 1) * H] for j in gates]
    pieces += [recurrent_kernel[:, j * H : (j + 1) * H] for j in gates]
    pieces += [bias[j * H : (j + 1) * H] for j in gates]
    pieces += [bias[(count + j) * H : (count + j + 1) * H] for j in gates]
    return np.concatenate([np.ascontiguousarray(p).reshape(-1) for p in pieces])


def regions(cell: str, buffer: np.ndarray, inputs: int, hidden: int) -> tuple[np.ndarray, ...]:
    """cuDNN's reading of a params buffer: (W_ih (G*H, in), W_hh (G*H, H), b_ih, b_hh),
    gates in cuDNN's order (which is PyTorch's: i f g o, r z n)."""
    count = len(CUDNN_ORDER[cell])
    sizes = [hidden * inputs] * count + [hidden * hidden] * count + [hidden] * 2 * count
    parts = np.split(buffer, np.cumsum(sizes)[:-1])
    W_ih = np.concatenate([p.reshape(hidden, inputs) for p in parts[:count]])
    W_hh = np.concatenate([p.reshape(hidden, hidden) for p in parts[count : 2 * count]])
    b_ih = np.concatenate(parts[2 * count : 3 * count])
    b_hh = np.concatenate(parts[3 * count :])
    return W_ih, W_hh, b_ih, b_hh


def rnn(layer, x: np.ndarray, lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
    """The cuDNN layer on a padded batch; returns (outputs (B, T, D*H), h_n (D, B, H), c_n)."""

    def step_for(direction: str):
        arrays = [layer.raw[f"{direction}.{w}"] for w in ("kernel", "recurrent_kernel", "bias")]
        buffer = params(layer.cell, *arrays)
        weights = regions(layer.cell, buffer, layer.inputs, layer.hidden)
        if layer.cell == "lstm":
            return lambda x_t, state: lstm_cell(x_t, *state, *weights)
        return lambda x_t, state: (gru_cell(x_t, state[0], *weights, reset_after=True),)

    go_backwards = layer.settings["keras_options"].get("go_backwards", False)
    return run_directions(layer, x, lengths, h0, c0, step_for, go_backwards)
