"""The gate tables: how each framework stacks the gates of an LSTM and of a GRU.

Every framework stores a recurrent layer as a few big arrays holding all its
gates stacked together, but each picks its own stacking order, its own
orientation (``x @ kernel`` or ``W @ x``) and its own number of biases.  To move
weights between frameworks we name every gate's piece once, in one canonical
layout (``shared.layout``), and convert each framework to and from it: the LSTM
converters are in ``shared.layout.lstm``, the GRU converters in
``shared.layout.gru``.  This module holds what both use: the tables of gate
orders, side by side, and the one function that reorders gate blocks.

The two cells, in canonical letters (σ is the logistic sigmoid, * elementwise):

    LSTM, gates i, f, g, o; state (h, c)      GRU, gates r, z, n; state (h,)
    i = σ(W_ii x + b_ii + W_hi h + b_hi)      r = σ(W_ir x + b_ir + W_hr h + b_hr)
    f = σ(W_if x + b_if + W_hf h + b_hf)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    o = σ(W_io x + b_io + W_ho h + b_ho)      h' = (1 - z) * n + z * h
    c' = f * c + i * g
    h' = o * tanh(c')

Each framework's letters for them:

    LSTM   canonical i f g o = PyTorch i f g o = Keras i f c o;  TF1 stacks i j f o
           (j is g); ONNX stacks i o f c.
    GRU    canonical r z n = PyTorch r z n (reset, update, new);  Keras stacks z r h
           (update, reset, candidate), and so do ONNX and TF1 (TF1 keeps r, u in one
           kernel and the candidate in another).

So a GRU port that transposes the kernels but forgets to swap the first two
blocks (r and z) computes something else without any error: the shapes agree
(keras-team/keras#15915).  ``GATE_ORDER`` and ``GRU_GATE_ORDER`` below write
each stacking order in canonical letters.

Shape legend: H hidden.
"""

from __future__ import annotations

import numpy as np

# The canonical gate letters of each cell, in the canonical (PyTorch) stacking order.
CELL_GATES = {"lstm": "ifgo", "gru": "rzn"}

# Each framework's LSTM gate stacking order, in canonical letters.
GATE_ORDER = {"keras": "ifgo", "torch": "ifgo", "tf1": "igfo", "onnx": "iofg"}
# Each framework's GRU gate stacking order, in canonical letters.  TF1's is that of
# its two kernels side by side: gates/kernel (r, u=z), then candidate/kernel (n).
GRU_GATE_ORDER = {"keras": "zrn", "torch": "rzn", "tf1": "rzn", "onnx": "zrn"}

_ORDERS = {"lstm": GATE_ORDER, "gru": GRU_GATE_ORDER}


def _gate_letters(order: str, argument: str, cell: str) -> str:
    """The canonical letters of ``order``: a table key of ``cell`` or a permutation of its gates."""
    table, gates = _ORDERS[cell], CELL_GATES[cell]
    if isinstance(order, str) and order in table:
        return table[order]
    if isinstance(order, str) and len(order) == len(gates) and sorted(order) == sorted(gates):
        return order
    raise ValueError(
        f"{argument} must be one of {', '.join(table)} or a permutation of {gates!r} "
        f"(cell={cell!r}); got {order!r}"
    )


def reorder_gates(
    array: np.ndarray, src: str, dst: str, axis: int, cell: str = "lstm"
) -> np.ndarray:
    """Reorder the equal gate blocks of ``array`` along ``axis`` from ``src`` to ``dst``.

    Examples: ``reorder_gates(onnx_W, "onnx", "torch", axis=0)`` turns ONNX's
    (4H, in) i, o, f, c stack into PyTorch's i, f, g, o stack;
    ``reorder_gates(kernel, "keras", "torch", axis=1, cell="gru")`` swaps the
    z and r blocks of a Keras GRU kernel (in, 3H).

    Args:
        array: any array whose length along ``axis`` is G*H (G gate blocks of H;
            G = 4 for an LSTM, 3 for a GRU).
        src: the order the blocks are in: a key of ``GATE_ORDER`` (LSTM) or
            ``GRU_GATE_ORDER`` (GRU), or canonical letters such as "igfo" or "zrn".
        dst: the order wanted, in the same form.
        axis: the axis that stacks the gates.
        cell: "lstm" or "gru", which table the keys refer to.

    Returns:
        A new array of the same shape with the blocks in ``dst`` order.
    """
    if cell not in CELL_GATES:
        raise ValueError(f"cell must be one of {', '.join(CELL_GATES)}; got {cell!r}")
    src_letters = _gate_letters(src, "src", cell)
    dst_letters = _gate_letters(dst, "dst", cell)
    gates = len(src_letters)
    array = np.asarray(array)
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {array.shape}")
    length = array.shape[axis]
    if length == 0 or length % gates:
        raise ValueError(
            f"array has length {length} along axis {axis} (shape {array.shape}); "
            f"expected {gates} equal gate blocks, a positive multiple of {gates}"
        )
    blocks = np.split(array, gates, axis=axis)
    return np.concatenate([blocks[src_letters.index(gate)] for gate in dst_letters], axis=axis)


def hidden_size_of(name: str, array: np.ndarray, axis: int, rule: str, gates: int = 4) -> int:
    """H, read from a 2-D ``array`` whose ``axis`` stacks ``gates`` blocks; ValueError if it can't.

    Args:
        name: the argument's name, for the message.
        array: the array, e.g. a kernel (in, 4H).
        axis: the axis that stacks the gates.
        rule: the expected shape in words, e.g. "(in, 4H)".
        gates: G, the number of gate blocks (4 for an LSTM, 3 for a GRU).
    """
    if array.ndim != 2 or array.shape[axis] == 0 or array.shape[axis] % gates:
        raise ValueError(
            f"{name} must have shape {rule} with {gates}H a positive multiple of {gates}; "
            f"got {array.shape}"
        )
    return array.shape[axis] // gates


def check_shape(name: str, array: np.ndarray, expected: tuple, rule: str, why: str) -> None:
    """ValueError naming ``name``, the rule and the reason unless ``array.shape == expected``."""
    if array.shape != expected:
        raise ValueError(
            f"{name} must have shape {rule} = {expected} with {why}; got {array.shape}"
        )
