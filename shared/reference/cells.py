"""The recurrent cells and layers written out in NumPy, float64: the reference's bottom rungs.

Nothing here is fast; everything is meant to be read.  Two cells, each one step
for a batch, gates stacked as PyTorch stacks them (σ is the logistic sigmoid):

    LSTM, state (h, c), gates i, f, g, o:
        i  = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate: how much new content to write
        f  = σ(W_if x + b_if + W_hf h + b_hf)      forget gate: how much of the old cell to keep
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate content
        o  = σ(W_io x + b_io + W_ho h + b_ho)      output gate: how much of the cell to show
        c' = f * c + i * g                         the new cell state
        h' = o * tanh(c')                          the new hidden state, also the step's output

    GRU, state (h,), gates r, z, n:
        r  = σ(W_ir x + b_ir + W_hr h + b_hr)      reset gate: how much of h the candidate sees
        z  = σ(W_iz x + b_iz + W_hz h + b_hz)      update gate: how much of h to keep
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))     reset AFTER the product (PyTorch,
                                                   cuDNN, Keras reset_after=True), or
        n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)     reset BEFORE it (TF1 GRUCell, Keras 2,
                                                   Keras reset_after=False)
        h' = (1 - z) * n + z * h                   the new hidden state, also the output

Rows are post-padded; a row's length is its number of real steps.  A padded step
changes nothing: the state passes through and the output is zeros, so every row
ends in the state of its last real token, whatever the batch width.

Shape legend: B batch, T steps, H hidden.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x), computed as (1 + tanh(x / 2)) / 2: equal, and never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def _float64(*arrays) -> list[np.ndarray]:
    return [np.asarray(a, np.float64) for a in arrays]


def lstm_cell(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step for a batch, in float64.

    Args:
        x: (B, in) this step's inputs.
        h: (B, H) previous hidden state.
        c: (B, H) previous cell state.
        W_ih: (4H, in), gates stacked i, f, g, o.
        W_hh: (4H, H).
        b_ih: (4H,).
        b_hh: (4H,).

    Returns:
        (h', c'), each (B, H) float64.
    """
    x, h, c, W_ih, W_hh, b_ih, b_hh = _float64(x, h, c, W_ih, W_hh, b_ih, b_hh)
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, f, g, o = np.split(gates, 4, axis=1)  # each (B, H)
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c_next = f * c + i * g  # (B, H)
    h_next = o * np.tanh(c_next)  # (B, H)
    return h_next, c_next


def gru_cell(
    x: np.ndarray,
    h: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
    reset_after: bool = True,
) -> np.ndarray:
    """One GRU step for a batch, in float64.

    Args:
        x: (B, in) this step's inputs.
        h: (B, H) previous hidden state.
        W_ih: (3H, in), gates stacked r, z, n.
        W_hh: (3H, H).
        b_ih: (3H,).
        b_hh: (3H,).
        reset_after: True resets after the recurrent product (PyTorch's GRU); False
            before it (TF1's ``GRUCell``), where b_hn acts outside the product.

    Returns:
        h', (B, H) float64.
    """
    x, h, W_ih, W_hh, b_ih, b_hh = _float64(x, h, W_ih, W_hh, b_ih, b_hh)
    H = h.shape[1]
    from_x = x @ W_ih.T + b_ih  # (B, 3H): W_i* x + b_i* for r, z, n
    W_hr_hz, W_hn = W_hh[: 2 * H], W_hh[2 * H :]  # (2H, H), (H, H)
    r_z = sigmoid(from_x[:, : 2 * H] + h @ W_hr_hz.T + b_hh[: 2 * H])  # (B, 2H)
    r, z = r_z[:, :H], r_z[:, H:]  # each (B, H)
    if reset_after:
        n = np.tanh(from_x[:, 2 * H :] + r * (h @ W_hn.T + b_hh[2 * H :]))  # (B, H)
    else:
        n = np.tanh(from_x[:, 2 * H :] + (r * h) @ W_hn.T + b_hh[2 * H :])  # (B, H)
    return (1.0 - z) * n + z * h  # (B, H)


def step_function(cell: str, reset_after: bool = True) -> Callable:
    """``step(x, state, *params) -> state``: one step of ``cell`` on a tuple state.

    The state is (h, c) for an LSTM and (h,) for a GRU; the new state's first part,
    h, is also the step's output.
    """
    if cell == "lstm":
        return lambda x, state, *params: lstm_cell(x, *state, *params)
    if cell == "gru":
        return lambda x, state, *params: (gru_cell(x, state[0], *params, reset_after=reset_after),)
    raise ValueError(f"cell must be 'lstm' or 'gru'; got {cell!r}")


def reverse_real(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse the first lengths[b] steps of each row b along axis 1; padding stays put.

    Applying it twice gives ``x`` back.
    """
    reversed_x = x.copy()
    for row, length in enumerate(lengths):
        reversed_x[row, :length] = x[row, :length][::-1]
    return reversed_x


def rnn_layer(
    cell: str,
    x: np.ndarray,
    lengths: np.ndarray,
    state: tuple[np.ndarray, ...],
    params: tuple[np.ndarray, ...],
    reverse: bool = False,
    reset_after: bool = True,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One recurrent layer over a padded batch, one direction.

    A step t >= lengths[b] is padding for row b: its state passes through unchanged
    and its output is zeros.  With ``reverse=True`` each row is read from its LAST
    REAL token back to its first (not from T - 1, which may be padding), and the
    outputs are put back in input order: outputs[b, t] belongs to input x[b, t].

    Args:
        cell: "lstm" or "gru".
        x: (B, T, in) inputs.
        lengths: (B,) real steps per row, 0 <= lengths[b] <= T.
        state: the initial state, (h0, c0) or (h0,), each (B, H).
        params: (W_ih, W_hh, b_ih, b_hh) as in ``lstm_cell`` / ``gru_cell``.
        reverse: read each row's real steps backwards.
        reset_after: for a GRU, where the reset gate acts (see ``gru_cell``).

    Returns:
        (outputs (B, T, H), state): h at every real step, zeros at padding; the state
        after each row's last real step, each part (B, H).
    """
    x = np.asarray(x, np.float64)
    lengths = np.asarray(lengths)
    assert lengths.shape == (x.shape[0],) and np.all((lengths >= 0) & (lengths <= x.shape[1]))
    if reverse:
        # Reading backwards is reading forwards on each row's real steps reversed.
        outputs, state = rnn_layer(
            cell, reverse_real(x, lengths), lengths, state, params, reset_after=reset_after
        )
        return reverse_real(outputs, lengths), state
    step = step_function(cell, reset_after)
    state = tuple(np.array(part, np.float64) for part in state)  # each (B, H)
    outputs = np.zeros((x.shape[0], x.shape[1], state[0].shape[1]))  # (B, T, H)
    for t in range(x.shape[1]):
        new_state = step(x[:, t], state, *params)  # each (B, H)
        real = (t < lengths)[:, None]  # (B, 1): is step t a real token of this row?
        state = tuple(np.where(real, new, old) for new, old in zip(new_state, state, strict=True))
        outputs[:, t] = np.where(real, new_state[0], 0.0)
    return outputs, state


def lstm_layer(
    x: np.ndarray,
    lengths: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One LSTM layer over a padded batch: ``rnn_layer("lstm", ...)`` with (h0, c0).

    Returns:
        (outputs (B, T, H), (h, c) each (B, H)).
    """
    return rnn_layer("lstm", x, lengths, (h0, c0), (W_ih, W_hh, b_ih, b_hh), reverse)


def gru_layer(
    x: np.ndarray,
    lengths: np.ndarray,
    h0: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
    reverse: bool = False,
    reset_after: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One GRU layer over a padded batch: ``rnn_layer("gru", ...)`` with h0.

    Returns:
        (outputs (B, T, H), h (B, H)).
    """
    outputs, (h,) = rnn_layer(
        "gru", x, lengths, (h0,), (W_ih, W_hh, b_ih, b_hh), reverse, reset_after
    )
    return outputs, h
