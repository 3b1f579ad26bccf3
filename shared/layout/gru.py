"""The GRU converters: each framework's arrays to another's (one layer, one direction).

The canonical GRU is PyTorch's (``shared.layout.gates`` has the equations):

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)          reset gate
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)          update gate
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn)) new content: reset AFTER the product
    h' = (1 - z) * n + z * h

The one place the frameworks disagree on the equations, not only the layout, is
where the reset gate acts on the candidate.  PyTorch (and cuDNN) reset after the
recurrent product, ``r * (W_hn h + b_hn)``; the original GRU, TF1's ``GRUCell``
and Keras 2 reset before it, ``W_hn (r * h)``.  Keras 3 can do either:
``reset_after=True`` (the default, PyTorch's equations) keeps two biases,
``reset_after=False`` one.  ONNX names the same switch ``linear_before_reset``
(1 = PyTorch's).  A GRU that resets before the product has no PyTorch
equivalent: ``nn.GRU`` cannot compute it, whatever weights it is given.

How each framework stores one layer, one direction (in: input width, H: hidden):

    framework              arrays                                  gates  biases
    PyTorch nn.GRU         weight_ih_l{k} (3H, in): W @ x          r z n  bias_ih_l{k} (3H,)
                           weight_hh_l{k} (3H, H)                         bias_hh_l{k} (3H,)
    Keras 3 GRU,           kernel (in, 3H): x @ kernel             z r h  bias (2, 3H):
      reset_after=True     recurrent_kernel (H, 3H)                       [input; recurrent]
    Keras GRU,             the same kernels                        z r h  bias (3H,)
      reset_after=False
    ONNX GRU               W (D, 3H, in), R (D, 3H, H)             z r h  B (D, 6H) = [Wb, Rb]
    TF1 GRUCell            gates/kernel (in + H, 2H): [x, h] @ k   r u    gates/bias (2H,)
                           candidate/kernel (in + H, H)            n      candidate/bias (H,)

With two biases, b_hn cannot be folded into b_in: it sits inside ``r * (...)``.
So unlike an LSTM, a GRU really has two independent biases for n, and both
frameworks train both (only b_r and b_z could be summed).

Shape legend: H hidden, D directions.
"""

from __future__ import annotations

import numpy as np

from shared.layout.gates import check_shape, hidden_size_of, reorder_gates

_RESET_BEFORE = (
    "a (3H,) bias is a Keras GRU with reset_after=False, which resets before the recurrent "
    "product; nn.GRU resets after it (reset_after=True, bias (2, 3H)) and cannot compute it"
)


def _keras_gru_arrays(kernel, recurrent_kernel, bias) -> tuple[np.ndarray, ...]:
    """The three Keras GRU arrays, checked; returns (kernel, recurrent_kernel, bias, H)."""
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = hidden_size_of("kernel", kernel, 1, "(in, 3H)", gates=3)
    why = f"H = kernel.shape[1] // 3 = {hidden}"
    check_shape("recurrent_kernel", recurrent_kernel, (hidden, 3 * hidden), "(H, 3H)", why)
    if bias.shape not in ((2, 3 * hidden), (3 * hidden,)):
        raise ValueError(
            f"bias must have shape (2, 3H) = {(2, 3 * hidden)} (reset_after=True) or (3H,) = "
            f"{(3 * hidden,)} (reset_after=False) with {why}; got {bias.shape}"
        )
    return kernel, recurrent_kernel, bias, hidden


def keras_gru_to_torch(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``GRU(reset_after=True)`` arrays to PyTorch ``nn.GRU`` arrays.

    Args:
        kernel: (in, 3H), gates z, r, h.
        recurrent_kernel: (H, 3H).
        bias: (2, 3H): row 0 the input bias, row 1 the recurrent bias.

    Returns:
        (weight_ih (3H, in), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,)), gates r, z, n.

    Raises:
        ValueError: a wrong shape, or a (3H,) bias: a ``reset_after=False`` GRU.
    """
    kernel, recurrent_kernel, bias, _ = _keras_gru_arrays(kernel, recurrent_kernel, bias)
    if bias.ndim == 1:
        raise ValueError(_RESET_BEFORE)
    # Transposed (x @ kernel vs W @ x), and the first two blocks swap: z r h -> r z n.
    weight_ih = reorder_gates(kernel.T, "keras", "torch", axis=0, cell="gru")  # (3H, in)
    weight_hh = reorder_gates(recurrent_kernel.T, "keras", "torch", axis=0, cell="gru")  # (3H, H)
    bias_ih, bias_hh = (reorder_gates(b, "keras", "torch", axis=0, cell="gru") for b in bias)
    return weight_ih, weight_hh, bias_ih, bias_hh


def torch_gru_to_keras(
    weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch ``nn.GRU`` arrays to Keras ``GRU(reset_after=True)`` arrays.

    Args:
        weight_ih: (3H, in), gates r, z, n.
        weight_hh: (3H, H).
        bias_ih: (3H,).
        bias_hh: (3H,).

    Returns:
        (kernel (in, 3H), recurrent_kernel (H, 3H), bias (2, 3H) = [bias_ih; bias_hh]),
        gates z, r, h.
    """
    weight_ih, weight_hh, bias_ih, bias_hh = map(
        np.asarray, (weight_ih, weight_hh, bias_ih, bias_hh)
    )
    hidden = hidden_size_of("weight_ih", weight_ih, 0, "(3H, in)", gates=3)
    why = f"H = weight_ih.shape[0] // 3 = {hidden}"
    check_shape("weight_hh", weight_hh, (3 * hidden, hidden), "(3H, H)", why)
    check_shape("bias_ih", bias_ih, (3 * hidden,), "(3H,)", why)
    check_shape("bias_hh", bias_hh, (3 * hidden,), "(3H,)", why)
    kernel = reorder_gates(weight_ih, "torch", "keras", axis=0, cell="gru").T  # (in, 3H)
    recurrent_kernel = reorder_gates(weight_hh, "torch", "keras", axis=0, cell="gru").T  # (H, 3H)
    bias = np.stack(
        [reorder_gates(b, "torch", "keras", axis=0, cell="gru") for b in (bias_ih, bias_hh)]
    )  # (2, 3H)
    return np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent_kernel), bias


def onnx_gru_to_keras(
    W: np.ndarray, R: np.ndarray, B: np.ndarray, linear_before_reset: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``GRU`` arrays (one direction) to Keras ``GRU`` arrays.

    ONNX keeps W, R and B with a leading num_directions axis; slice one direction
    (``W[0]``) first.  ``linear_before_reset=1`` is PyTorch's GRU: the result is a
    ``reset_after=True`` Keras GRU with bias [Wb; Rb].  ``linear_before_reset=0``
    (ONNX's default) resets before the recurrent product, a ``reset_after=False``
    Keras GRU with one bias Wb + Rb.  The sum is exact there: ONNX then computes
    n = tanh(x W_n + (r * h) R_n + Rb_n + Wb_n), both biases outside the reset
    product, and the z and r gates add both inside σ, so only each sum acts.

    Args:
        W: (3H, in), gates z, r, h.
        R: (3H, H).
        B: (6H,) = [Wb, Rb], input and recurrent biases end to end.
        linear_before_reset: the node's attribute, 0 or 1.

    Returns:
        (kernel (in, 3H), recurrent_kernel (H, 3H), bias): bias (2, 3H) for
        linear_before_reset=1, (3H,) for 0.  Gates z, r, h (the same order as ONNX).
    """
    if linear_before_reset not in (0, 1) or isinstance(linear_before_reset, bool):
        raise ValueError(f"linear_before_reset must be 0 or 1; got {linear_before_reset!r}")
    W, R, B = map(np.asarray, (W, R, B))
    hidden = hidden_size_of("W", W, 0, "(3H, in)", gates=3)
    why = f"H = W.shape[0] // 3 = {hidden}"
    check_shape("R", R, (3 * hidden, hidden), "(3H, H)", why)
    check_shape("B", B, (6 * hidden,), "(6H,)", why)
    input_bias, recurrent_bias = B[: 3 * hidden], B[3 * hidden :]
    if linear_before_reset:
        bias = np.stack([input_bias, recurrent_bias])  # (2, 3H)
    else:
        bias = input_bias + recurrent_bias  # (3H,)
    return np.ascontiguousarray(W.T), np.ascontiguousarray(R.T), bias


def keras_gru_to_onnx(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``GRU`` arrays to ONNX ``GRU`` arrays (one direction).

    The node must say how the reset gate acts: ``linear_before_reset=1`` for a
    (2, 3H) bias (``reset_after=True``, PyTorch's GRU) and ``linear_before_reset=0``
    for a (3H,) bias (``reset_after=False``).  Add ONNX's leading num_directions
    axis yourself (``W[None]``) when writing a model.

    Args:
        kernel: (in, 3H), gates z, r, h.
        recurrent_kernel: (H, 3H).
        bias: (2, 3H) or (3H,).

    Returns:
        (W (3H, in), R (3H, H), B (6H,) = [Wb, Rb]), gates z, r, h; a (3H,) bias becomes
        Wb with Rb zeros.
    """
    kernel, recurrent_kernel, bias, _ = _keras_gru_arrays(kernel, recurrent_kernel, bias)
    if bias.ndim == 1:
        bias = np.stack([bias, np.zeros_like(bias)])  # (2, 3H): only the sum acts here
    W = np.ascontiguousarray(kernel.T)  # (3H, in): ONNX and Keras both stack z, r, h
    R = np.ascontiguousarray(recurrent_kernel.T)  # (3H, H)
    return W, R, np.concatenate([bias[0], bias[1]])  # B: (6H,)


def tf1_gru_to_keras(
    gates_kernel: np.ndarray,
    gates_bias: np.ndarray,
    candidate_kernel: np.ndarray,
    candidate_bias: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1 ``GRUCell`` arrays to a Keras ``GRU(reset_after=False)``'s arrays.

    TF1 computes  r, u = split(σ([x, h] @ gates_kernel + gates_bias))  and
    n = tanh([x, r * h] @ candidate_kernel + candidate_bias), h' = u * h + (1 - u) * n:
    the reset acts before the recurrent product, which is Keras's
    ``reset_after=False`` (u is Keras's z).  Unlike the LSTM's ``forget_bias``,
    TF1 adds nothing at run time: the 1.0 it starts the gate bias with is stored.

    Args:
        gates_kernel: (in + H, 2H), blocks r, u; the first ``in`` rows multiply x.
        gates_bias: (2H,).
        candidate_kernel: (in + H, H).
        candidate_bias: (H,).

    Returns:
        (kernel (in, 3H), recurrent_kernel (H, 3H), bias (3H,)), gates z, r, h.
    """
    gates_kernel, gates_bias, candidate_kernel, candidate_bias = map(
        np.asarray, (gates_kernel, gates_bias, candidate_kernel, candidate_bias)
    )
    hidden = hidden_size_of("gates_kernel", gates_kernel, 1, "(in + H, 2H)", gates=2)
    why = f"H = gates_kernel.shape[1] // 2 = {hidden}"
    if gates_kernel.shape[0] <= hidden:
        raise ValueError(
            f"gates_kernel must have shape (in + H, 2H) with in >= 1 and {why}, so more than "
            f"{hidden} rows; got {gates_kernel.shape}"
        )
    rows = gates_kernel.shape[0]
    check_shape("gates_bias", gates_bias, (2 * hidden,), "(2H,)", why)
    check_shape("candidate_kernel", candidate_kernel, (rows, hidden), "(in + H, H)", why)
    check_shape("candidate_bias", candidate_bias, (hidden,), "(H,)", why)
    inputs = rows - hidden
    fused = np.concatenate([gates_kernel, candidate_kernel], axis=1)  # (in + H, 3H): r u n
    fused = reorder_gates(fused, "tf1", "keras", axis=1, cell="gru")  # (in + H, 3H): z r h
    bias = reorder_gates(
        np.concatenate([gates_bias, candidate_bias]), "tf1", "keras", axis=0, cell="gru"
    )  # (3H,)
    return np.ascontiguousarray(fused[:inputs]), np.ascontiguousarray(fused[inputs:]), bias


def keras_gru_to_tf1(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A Keras ``GRU(reset_after=False)``'s arrays to TF1 ``GRUCell`` arrays.

    Args:
        kernel: (in, 3H), gates z, r, h.
        recurrent_kernel: (H, 3H).
        bias: (3H,).

    Returns:
        (gates_kernel (in + H, 2H) blocks r, u; gates_bias (2H,);
        candidate_kernel (in + H, H); candidate_bias (H,)).

    Raises:
        ValueError: a wrong shape, or a (2, 3H) bias: a ``reset_after=True`` GRU, whose
            reset acts after the recurrent product; a TF1 ``GRUCell`` resets before it
            and cannot compute that.
    """
    kernel, recurrent_kernel, bias, hidden = _keras_gru_arrays(kernel, recurrent_kernel, bias)
    if bias.ndim == 2:
        raise ValueError(
            "a (2, 3H) bias is a Keras GRU with reset_after=True, which resets after the "
            "recurrent product; a TF1 GRUCell resets before it (reset_after=False, bias (3H,)) "
            "and cannot compute it"
        )
    fused = np.concatenate([kernel, recurrent_kernel], axis=0)  # (in + H, 3H): z r h
    fused = reorder_gates(fused, "keras", "tf1", axis=1, cell="gru")  # (in + H, 3H): r u n
    bias = reorder_gates(bias, "keras", "tf1", axis=0, cell="gru")  # (3H,): r u n
    return (
        np.ascontiguousarray(fused[:, : 2 * hidden]),
        bias[: 2 * hidden].copy(),
        np.ascontiguousarray(fused[:, 2 * hidden :]),
        bias[2 * hidden :].copy(),
    )
