"""One direction of one recurrent layer, to and from the canonical gate-by-gate form.

The readers first bring every framework's arrays to Keras's or PyTorch's
(``shared.layout.lstm`` and ``shared.layout.gru`` have a converter for each of
TF1 and ONNX), and then come here; the writers leave from here.  Canonical
entries are ``shared.layout.split_gates``'s, under the prefix "l{k}.{direction}".

A GRU that resets before the recurrent product (Keras ``reset_after=False``,
TF1 ``GRUCell``, ONNX ``linear_before_reset=0``) has one bias per gate in its
source; it is kept as b_ih with b_hh zeros, which is exact: there both biases of
each gate sit outside the reset product, so only their sum acts
(``shared.reference.cells.gru_cell(reset_after=False)`` computes it so).

Keras 2's ``CuDNNLSTM`` and ``CuDNNGRU`` keep Keras's variables but hand them to
cuDNN, whose layout is not Keras's: ``from_cudnn`` says how.

Shape legend: H hidden, G gates (4 for an LSTM, 3 for a GRU).
"""

from __future__ import annotations

import numpy as np

from shared.layout import (
    CELL_GATES,
    GATE_ORDER,
    GRU_GATE_ORDER,
    join_gates,
    keras_gru_to_onnx,
    keras_lstm_to_torch,
    reorder_gates,
    split_gates,
    torch_gru_to_keras,
    torch_lstm_to_keras,
)


def from_torch(cell: str, prefix: str, weight_ih, weight_hh, bias_ih, bias_hh) -> dict:
    """PyTorch-stacked arrays (G*H, in), (G*H, H), (G*H,), (G*H,) to canonical entries."""
    return split_gates(prefix, weight_ih, weight_hh, bias_ih, bias_hh, cell)


def from_keras(cell: str, prefix: str, kernel, recurrent_kernel, bias) -> dict:
    """Keras arrays to canonical entries.

    Args:
        cell: "lstm" or "gru".
        prefix: e.g. "l0.forward".
        kernel: (in, G*H).
        recurrent_kernel: (H, G*H).
        bias: LSTM (4H,); GRU (2, 3H) (reset_after=True) or (3H,) (reset_after=False).
    """
    if cell == "lstm":
        return from_torch(cell, prefix, *keras_lstm_to_torch(kernel, recurrent_kernel, bias))
    # Through ONNX's layout, which stacks z, r, h as Keras does and takes either bias:
    # W (3H, in), R (3H, H), B (6H,) = [input bias, recurrent bias (zeros for a (3H,) bias)].
    W, R, B = keras_gru_to_onnx(kernel, recurrent_kernel, bias)
    hidden = R.shape[1]
    to_torch = lambda a: reorder_gates(a, "onnx", "torch", axis=0, cell="gru")  # noqa: E731
    return from_torch(
        cell, prefix, to_torch(W), to_torch(R), to_torch(B[: 3 * hidden]), to_torch(B[3 * hidden :])
    )


def from_cudnn(cell: str, prefix: str, kernel, recurrent_kernel, bias) -> dict:
    """Keras 2 ``CuDNNLSTM``/``CuDNNGRU`` arrays to canonical entries.

    Keras 2 stored Keras-shaped variables, but never multiplied by them itself: it
    cut each into gate slices, flattened each slice and handed the concatenation to
    cuDNN (``cudnn_recurrent.py``, ``_canonical_to_params``), and cuDNN reads each
    flat slice as a row-major matrix W that multiplies from the left (W @ x):

        gate j of the kernel (in, G*H), columns j*H:(j+1)*H, (in, H)
            -> W_ih (H, in) = the slice's numbers read again as (H, in): a raw reshape,
               NOT a transpose (Keras 2's own loader: ``k.T.reshape(k.shape, order="F")``
               for a Keras LSTM, which is this reshape transposed)
        gate j of the recurrent kernel (H, G*H), (H, H)
            -> W_hh (H, H) = the slice as it is: NOT transposed for W @ h (Keras 2's
               loader transposes it, for a Keras LSTM's h @ recurrent_kernel)
        bias (2*G*H,) = [input biases; recurrent biases], each in the columns' gate order

    The columns stack Keras's gates (LSTM i, f, c, o; GRU z, r, h); cuDNN's GRU resets
    after the recurrent product, as PyTorch's does.

    Args:
        cell: "lstm" or "gru".
        prefix: e.g. "l0.forward".
        kernel: (in, G*H).
        recurrent_kernel: (H, G*H).
        bias: (2*G*H,).
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    gates = 4 if cell == "lstm" else 3
    hidden = recurrent_kernel.shape[0] if recurrent_kernel.ndim == 2 else 0
    inputs = kernel.shape[0] if kernel.ndim == 2 else 0
    expected = ((inputs, gates * hidden), (hidden, gates * hidden), (2 * gates * hidden,))
    if not hidden or (kernel.shape, recurrent_kernel.shape, bias.shape) != expected:
        raise ValueError(
            f"a cuDNN {cell.upper()} holds kernel (in, {gates}H), recurrent_kernel (H, {gates}H) "
            f"and bias ({2 * gates}H,); got {kernel.shape}, {recurrent_kernel.shape}, {bias.shape}"
        )
    columns = (GATE_ORDER if cell == "lstm" else GRU_GATE_ORDER)["keras"]  # canonical letters
    blocks = {}
    for j, gate in enumerate(columns):
        cols = slice(j * hidden, (j + 1) * hidden)
        blocks[gate] = (
            np.ascontiguousarray(kernel[:, cols]).reshape(hidden, inputs),  # (H, in)
            recurrent_kernel[:, cols],  # (H, H)
            bias[cols],  # (H,)
            bias[gates * hidden + j * hidden : gates * hidden + (j + 1) * hidden],  # (H,)
        )
    stacked = [np.concatenate([blocks[gate][piece] for gate in CELL_GATES[cell]])
               for piece in range(4)]
    return from_torch(cell, prefix, *stacked)


def to_torch(cell: str, weights: dict, prefix: str) -> tuple[np.ndarray, ...]:
    """Canonical entries to (weight_ih, weight_hh, bias_ih, bias_hh), PyTorch-stacked."""
    return join_gates(weights, prefix, cell)


def to_keras(cell: str, weights: dict, prefix: str, reset_after: bool = True) -> list[np.ndarray]:
    """Canonical entries to Keras's [kernel, recurrent_kernel, bias], ``get_weights()`` order.

    An LSTM's bias is b_ih + b_hh (4H,); a GRU's is [b_ih; b_hh] (2, 3H) with
    ``reset_after``, else the sum (3H,).
    """
    weight_ih, weight_hh, bias_ih, bias_hh = to_torch(cell, weights, prefix)
    if cell == "lstm":
        return list(torch_lstm_to_keras(weight_ih, weight_hh, bias_ih, bias_hh))
    if reset_after:
        return list(torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh))
    to_keras_order = lambda a: reorder_gates(a, "torch", "keras", axis=0, cell="gru")  # noqa: E731
    return [
        np.ascontiguousarray(to_keras_order(weight_ih).T),  # (in, 3H)
        np.ascontiguousarray(to_keras_order(weight_hh).T),  # (H, 3H)
        to_keras_order(bias_ih + bias_hh),  # (3H,)
    ]
