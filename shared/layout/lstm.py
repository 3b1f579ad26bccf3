"""The LSTM converters: each framework's arrays to another's (one layer, one direction).

The gates and how each framework stacks them are in ``shared.layout.gates``; here is
what the arrays look like and how to move between them (in: input width,
H: hidden):

    framework             arrays                                   gates    biases
    Keras 3 layers.LSTM   kernel (in, 4H): x @ kernel              i f c o  bias (4H,)
                          recurrent_kernel (H, 4H): h @ rk
    PyTorch nn.LSTM       weight_ih_l{k} (4H, in): W @ x           i f g o  bias_ih_l{k} (4H,)
                          weight_hh_l{k} (4H, H)                            + bias_hh_l{k} (4H,)
                          (backward direction: suffix _reverse)
    TF1 LSTMCell,         kernel (in + H, 4H): [x, h] @ kernel     i j f o  bias (4H,), plus
      BasicLSTMCell       (first in rows multiply x, last H h)              forget_bias added to
                                                                            f at run time only
    ONNX LSTM             W (D, 4H, in), R (D, 4H, H): W @ x       i o f c  B (D, 8H) = [Wb, Rb]

So Keras and PyTorch differ only by a transpose and PyTorch's second bias
(the two are simply added: every gate reads b_i* + b_h*).  TF1 fuses the input
and recurrent kernels into one, orders the gates i, j, f, o, and adds
``forget_bias`` (default 1.0) to the forget gate when it runs: the stored bias
does not include it.  ONNX orders the gates i, o, f, c and keeps two biases end
to end in one vector.  TF1's peepholes, projections and cell clipping and ONNX's
peepholes P are not covered here.

These are the functions a user porting their own model calls (``shared.layout``
re-exports them and names the converted arrays gate by gate).

Shape legend: H hidden, D directions.
"""

from __future__ import annotations

import numpy as np

from shared.layout.gates import check_shape, hidden_size_of, reorder_gates


def keras_lstm_to_torch(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``LSTM`` arrays to PyTorch ``nn.LSTM`` arrays (one layer, one direction).

    Args:
        kernel: (in, 4H), gates i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,).

    Returns:
        (weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,)): Keras's one
        bias goes to bias_ih and bias_hh is zeros, since PyTorch only uses their sum.
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = hidden_size_of("kernel", kernel, 1, "(in, 4H)")
    why = f"H = kernel.shape[1] // 4 = {hidden}"
    check_shape("recurrent_kernel", recurrent_kernel, (hidden, 4 * hidden), "(H, 4H)", why)
    check_shape("bias", bias, (4 * hidden,), "(4H,)", why)
    # Both stack the gates i, f, g, o: only the orientation differs (x @ kernel vs W @ x).
    weight_ih = np.ascontiguousarray(kernel.T)  # (4H, in)
    weight_hh = np.ascontiguousarray(recurrent_kernel.T)  # (4H, H)
    return weight_ih, weight_hh, bias.copy(), np.zeros_like(bias)


def torch_lstm_to_keras(
    weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch ``nn.LSTM`` arrays to Keras ``LSTM`` arrays (one layer, one direction).

    Args:
        weight_ih: (4H, in), gates i, f, g, o.
        weight_hh: (4H, H).
        bias_ih: (4H,).
        bias_hh: (4H,).

    Returns:
        (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)) with bias = bias_ih + bias_hh.
    """
    weight_ih, weight_hh, bias_ih, bias_hh = map(
        np.asarray, (weight_ih, weight_hh, bias_ih, bias_hh)
    )
    hidden = hidden_size_of("weight_ih", weight_ih, 0, "(4H, in)")
    why = f"H = weight_ih.shape[0] // 4 = {hidden}"
    check_shape("weight_hh", weight_hh, (4 * hidden, hidden), "(4H, H)", why)
    check_shape("bias_ih", bias_ih, (4 * hidden,), "(4H,)", why)
    check_shape("bias_hh", bias_hh, (4 * hidden,), "(4H,)", why)
    kernel = np.ascontiguousarray(weight_ih.T)  # (in, 4H)
    recurrent_kernel = np.ascontiguousarray(weight_hh.T)  # (H, 4H)
    return kernel, recurrent_kernel, bias_ih + bias_hh


def tf1_lstm_to_keras(
    kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1 ``LSTMCell`` / ``BasicLSTMCell`` arrays to Keras ``LSTM`` arrays.

    TF1 computes  i, j, f, o = split([x, h] @ kernel + bias)  and then uses
    σ(f + forget_bias), so the forget bias Keras needs is the stored one plus
    ``forget_bias``.

    Args:
        kernel: the fused (in + H, 4H) kernel, gates i, j, f, o; its first ``in`` rows
            multiply x and its last H rows multiply h.
        bias: (4H,), without ``forget_bias``.
        forget_bias: the cell's ``forget_bias`` argument (TF1's default is 1.0).

    Returns:
        (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)), gates i, f, c, o.
    """
    kernel, bias = np.asarray(kernel), np.asarray(bias)
    hidden = hidden_size_of("kernel", kernel, 1, "(in + H, 4H)")
    if kernel.shape[0] <= hidden:
        raise ValueError(
            f"kernel must have shape (in + H, 4H) with in >= 1 and H = kernel.shape[1] // 4 "
            f"= {hidden}, so more than {hidden} rows; got {kernel.shape}"
        )
    check_shape("bias", bias, (4 * hidden,), "(4H,)", f"H = kernel.shape[1] // 4 = {hidden}")
    inputs = kernel.shape[0] - hidden
    fused = reorder_gates(kernel, "tf1", "keras", axis=1)  # (in + H, 4H)
    bias = reorder_gates(bias, "tf1", "keras", axis=0)  # (4H,)
    bias[hidden : 2 * hidden] += forget_bias  # Keras's block 1 is f
    return np.ascontiguousarray(fused[:inputs]), np.ascontiguousarray(fused[inputs:]), bias


def keras_lstm_to_tf1(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Keras ``LSTM`` arrays to TF1 ``LSTMCell`` / ``BasicLSTMCell`` arrays.

    The inverse of ``tf1_lstm_to_keras``: the cell will add ``forget_bias`` back
    when it runs, so it is subtracted from the stored forget bias here.

    Args:
        kernel: (in, 4H), gates i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,).
        forget_bias: the ``forget_bias`` the TF1 cell will be built with.

    Returns:
        (kernel (in + H, 4H), bias (4H,)), gates i, j, f, o.
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = hidden_size_of("kernel", kernel, 1, "(in, 4H)")
    why = f"H = kernel.shape[1] // 4 = {hidden}"
    check_shape("recurrent_kernel", recurrent_kernel, (hidden, 4 * hidden), "(H, 4H)", why)
    check_shape("bias", bias, (4 * hidden,), "(4H,)", why)
    bias = bias.copy()
    bias[hidden : 2 * hidden] -= forget_bias  # Keras's block 1 is f
    fused = np.concatenate([kernel, recurrent_kernel], axis=0)  # (in + H, 4H)
    return reorder_gates(fused, "keras", "tf1", axis=1), reorder_gates(bias, "keras", "tf1", axis=0)


def onnx_lstm_to_keras(
    W: np.ndarray, R: np.ndarray, B: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``LSTM`` arrays (one direction) to Keras ``LSTM`` arrays.

    ONNX stores W, R and B with a leading num_directions axis, (D, 4H, in) and
    so on; the caller slices one direction (``W[0]``) before calling this.

    Args:
        W: (4H, in), gates i, o, f, c.
        R: (4H, H).
        B: (8H,) = [Wb, Rb], input and recurrent biases end to end.

    Returns:
        (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,) = Wb + Rb), gates i, f, c, o.
    """
    W, R, B = map(np.asarray, (W, R, B))
    hidden = hidden_size_of("W", W, 0, "(4H, in)")
    why = f"H = W.shape[0] // 4 = {hidden}"
    check_shape("R", R, (4 * hidden, hidden), "(4H, H)", why)
    check_shape("B", B, (8 * hidden,), "(8H,)", why)
    kernel = reorder_gates(W, "onnx", "keras", axis=0).T  # (in, 4H)
    recurrent_kernel = reorder_gates(R, "onnx", "keras", axis=0).T  # (H, 4H)
    bias = reorder_gates(B[: 4 * hidden] + B[4 * hidden :], "onnx", "keras", axis=0)  # (4H,)
    return np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent_kernel), bias


def keras_lstm_to_onnx(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``LSTM`` arrays to ONNX ``LSTM`` arrays (one direction).

    Add ONNX's leading num_directions axis yourself (``W[None]``) when writing a model.

    Args:
        kernel: (in, 4H), gates i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,).

    Returns:
        (W (4H, in), R (4H, H), B (8H,)), gates i, o, f, c; Keras's one bias becomes Wb
        and Rb is zeros.
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = hidden_size_of("kernel", kernel, 1, "(in, 4H)")
    why = f"H = kernel.shape[1] // 4 = {hidden}"
    check_shape("recurrent_kernel", recurrent_kernel, (hidden, 4 * hidden), "(H, 4H)", why)
    check_shape("bias", bias, (4 * hidden,), "(4H,)", why)
    W = reorder_gates(kernel.T, "keras", "onnx", axis=0)  # (4H, in)
    R = reorder_gates(recurrent_kernel.T, "keras", "onnx", axis=0)  # (4H, H)
    B = np.concatenate([reorder_gates(bias, "keras", "onnx", axis=0), np.zeros_like(bias)])
    return W, R, B  # B: (8H,)
