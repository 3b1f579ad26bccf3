"""Run a Keras 2 LSTM or GRU as Keras 2 computed it, in NumPy, for ``--check``.

No Keras 2 installs next to Keras 3, and a Keras 2 layer is not a Keras 3 layer
holding the same arrays: its activation names mean Keras 2's functions
(``shared.port.activations``: its hard_sigmoid is clip(0.2x + 0.5, 0, 1)).  So the
source side of a layer read from a Keras 2 file is Keras 2's ``recurrent.py``
written out, on the arrays exactly as the file holds them (x @ kernel; columns
stacked i, f, c, o for an LSTM, z, r, h for a GRU), never on the port's
conversion of them (a = activation, ra = recurrent_activation):

    LSTMCell                                  GRUCell
    i  = ra(x W_i + h U_i + b_i)              z  = ra(x W_z + b_z + h U_z [+ br_z])
    f  = ra(x W_f + h U_f + b_f)              r  = ra(x W_r + b_r + h U_r [+ br_r])
    c' = f c + i a(x W_c + h U_c + b_c)       hh = a(x W_h + b_h + r (h U_h + br_h))  reset_after
    o  = ra(x W_o + h U_o + b_o)              hh = a(x W_h + b_h + (r h) U_h)         before
    h' = o a(c')                              h' = z h + (1 - z) hh

Keras masks: at a masked step (past a row's length) the state stays and the
output repeats the last one.  A Bidirectional layer's backward direction reads
each row's real steps from the last; ``go_backwards=True`` reads the padded row
from its end and returns the outputs in that order, as Keras does.  The check's
conventions are ``run_torch``'s.

Shape legend: B batch, T steps, H hidden, D directions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.port.activations import KERAS2
from shared.reference.cells import reverse_real

WEIGHTS = ("kernel", "recurrent_kernel", "bias")


def rnn(layer, x: np.ndarray, lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
    """The Keras 2 layer on a padded batch; returns (outputs (B, T, D*H), h_n (D, B, H), c_n)."""
    options = layer.settings["keras_options"]
    a, ra = KERAS2[options["activation"]], KERAS2[options["recurrent_activation"]]

    def step_for(direction: str) -> Callable:
        arrays = [np.asarray(layer.raw[f"{direction}.{w}"], np.float64) for w in WEIGHTS
                  if f"{direction}.{w}" in layer.raw]
        if layer.cell == "lstm":
            return lambda x_t, state: _lstm_step(x_t, state, arrays, a, ra)
        return lambda x_t, state: _gru_step(x_t, state, arrays, a, ra, layer.reset_after)

    return run_directions(layer, x, lengths, h0, c0, step_for, options.get("go_backwards", False))


def _lstm_step(x, state, arrays, a, ra):
    h, c = state
    kernel, recurrent_kernel, *bias = arrays
    z = x @ kernel + h @ recurrent_kernel + (bias[0] if bias else 0.0)  # (B, 4H)
    i, f, g, o = np.split(z, 4, axis=1)  # each (B, H), Keras's columns i, f, c, o
    c = ra(f) * c + ra(i) * a(g)
    return ra(o) * a(c), c


def _gru_step(x, state, arrays, a, ra, reset_after: bool):
    (h,) = state
    kernel, recurrent_kernel, *bias = arrays
    H = h.shape[1]
    input_bias, recurrent_bias = (0.0, 0.0)
    if bias:
        input_bias, recurrent_bias = (bias[0][0], bias[0][1]) if bias[0].ndim == 2 \
            else (bias[0], 0.0)
    from_x = x @ kernel + input_bias  # (B, 3H): columns z, r, h
    if reset_after:
        from_h = h @ recurrent_kernel + recurrent_bias  # (B, 3H)
        z = ra(from_x[:, :H] + from_h[:, :H])
        r = ra(from_x[:, H : 2 * H] + from_h[:, H : 2 * H])
        candidate = a(from_x[:, 2 * H :] + r * from_h[:, 2 * H :])
    else:
        z = ra(from_x[:, :H] + h @ recurrent_kernel[:, :H])
        r = ra(from_x[:, H : 2 * H] + h @ recurrent_kernel[:, H : 2 * H])
        candidate = a(from_x[:, 2 * H :] + (r * h) @ recurrent_kernel[:, 2 * H :])
    return (z * h + (1.0 - z) * candidate,)


def run_directions(layer, x, lengths, h0, c0, step_for: Callable, go_backwards: bool = False):
    """Each direction of ``layer`` with its ``step_for(direction)``, Keras's way (masking).

    Returns:
        (outputs (B, T, D*H) zeros at padding, h_n (D, B, H), c_n (D, B, H) or None).
    """
    x = np.asarray(x, np.float64)
    T = x.shape[1]
    mask = np.arange(T) < np.asarray(lengths)[:, None]  # (B, T)
    outputs, h_n, c_n = [], [], []
    for d, direction in enumerate(layer.directions):
        state = (h0[d],) if c0 is None else (h0[d], c0[d])
        step = step_for(direction)
        if direction == "backward":  # Bidirectional: each row's real steps, last first
            y, state = _masked(step, reverse_real(x, lengths), mask, state)
            y = reverse_real(y, lengths)
        elif go_backwards:  # the padded row from its end; outputs in that order
            y, state = _masked(step, x[:, ::-1], mask[:, ::-1], state)
        else:
            y, state = _masked(step, x, mask, state)
        outputs.append(y)
        h_n.append(state[0])
        c_n.extend(state[1:])
    y = np.concatenate(outputs, axis=-1) * mask[:, :, None]  # (B, T, D*H)
    return (y.astype(np.float32), np.stack(h_n).astype(np.float32),
            np.stack(c_n).astype(np.float32) if c_n else None)


def _masked(step: Callable, x: np.ndarray, mask: np.ndarray, state: tuple):
    """Keras's masked loop: a masked step keeps the state and repeats the last output."""
    state = tuple(np.asarray(s, np.float64) for s in state)
    B, T = mask.shape
    last = np.zeros_like(state[0])  # (B, H)
    outputs = np.zeros((B, T, state[0].shape[1]))  # (B, T, H)
    for t in range(T):
        new = step(x[:, t], state)
        keep = mask[:, t][:, None]  # (B, 1)
        state = tuple(np.where(keep, n, s) for n, s in zip(new, state, strict=True))
        last = np.where(keep, new[0], last)
        outputs[:, t] = last
    return outputs, state
