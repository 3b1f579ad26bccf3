"""Rung 1 of the ladder: one step of one cell, the reference against every framework's.

The reference cells (``shared.reference.cells``, float64) are checked first by hand
(one row, one hidden unit: every gate a single number), then for one step of a
batch against each framework's own cell, holding random arrays that the
converters of ``shared.layout`` take to the reference's layout:

    cell  peer                                    how it steps
    LSTM  torch nn.LSTMCell, Keras LSTMCell       the real cell, float32
          TF1 LSTMCell, forget_bias 0, 1, -0.7    its source's equations written out, float64
          ONNX LSTM                               its operator spec's equations written out
    GRU   torch nn.GRUCell, Keras GRUCell         the real cell (Keras: reset_after True, False)
          TF1 GRUCell                             its source's equations written out
          ONNX GRU, linear_before_reset 0, 1      its operator spec's equations written out

The real TF1 cells and ONNX runtimes run whole layers on the next rung
(``tests/test_ladder_2_layer.py``).  A failure names the cell, the peer, the
tensor and the largest difference.

Shape legend: B batch, H hidden, G gates (4 for an LSTM, 3 for a GRU).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared import reference
from shared.core.compare import FLOAT64_ATOL, STATE_ATOL, assert_close
from shared.reference.cells import step_function
from tests.peers import CELLS, GATES, STATE_PARTS, Peer, random_state


def test_sigmoid():
    x = np.array([-800.0, -2.0, 0.0, 0.5, 800.0])
    expected = [0.0, 1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-0.5)), 1.0]
    assert_close("sigmoid", reference.sigmoid(x), expected, FLOAT64_ATOL)


# ---- by hand: one row, two inputs, one hidden unit ----

def sigma(v):
    return 1 / (1 + math.exp(-v))


def lstm_by_hand():
    """(tensor, reference, by hand) for one LSTM step; W_ih rows i, f, g, o."""
    x, h, c = [0.5, -1.0], 0.2, -0.3
    W_ih = [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6], [0.7, 0.8]]
    W_hh = [0.9, -1.0, 1.1, -1.2]
    b_ih = [0.01, 0.02, 0.03, 0.04]
    b_hh = [-0.05, 0.06, -0.07, 0.08]

    def pre(k):  # W_i* x + b_i* + W_h* h + b_h* for gate row k
        return W_ih[k][0] * x[0] + W_ih[k][1] * x[1] + b_ih[k] + W_hh[k] * h + b_hh[k]

    i, f, g, o = sigma(pre(0)), sigma(pre(1)), math.tanh(pre(2)), sigma(pre(3))
    c_next = f * c + i * g
    h_next = o * math.tanh(c_next)
    got_h, got_c = reference.lstm_cell(np.array([x]), np.array([[h]]), np.array([[c]]),
                                       np.array(W_ih), np.array(W_hh)[:, None], np.array(b_ih),
                                       np.array(b_hh))
    return [("h'", got_h, [[h_next]]), ("c'", got_c, [[c_next]])]


def gru_by_hand():
    """(tensor, reference, by hand) for one GRU step, reset after and before; W_ih rows r, z, n."""
    x, h = [0.5, -1.0], 0.2
    W_ih = [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]]
    W_hh = [0.9, -1.0, 1.1]
    b_ih = [0.01, 0.02, 0.03]
    b_hh = [-0.05, 0.06, -0.07]

    def from_x(k):
        return W_ih[k][0] * x[0] + W_ih[k][1] * x[1] + b_ih[k]

    r = sigma(from_x(0) + W_hh[0] * h + b_hh[0])
    z = sigma(from_x(1) + W_hh[1] * h + b_hh[1])
    after = (1 - z) * math.tanh(from_x(2) + r * (W_hh[2] * h + b_hh[2])) + z * h
    before = (1 - z) * math.tanh(from_x(2) + W_hh[2] * (r * h) + b_hh[2]) + z * h
    assert abs(after - before) > 1e-3  # the two variants are different functions
    arrays = (np.array([x]), np.array([[h]]), np.array(W_ih), np.array(W_hh)[:, None],
              np.array(b_ih), np.array(b_hh))
    return [("h' reset after", reference.gru_cell(*arrays), [[after]]),
            ("h' reset before", reference.gru_cell(*arrays, reset_after=False), [[before]])]


BY_HAND = {"lstm": lstm_by_hand, "gru": gru_by_hand}


@pytest.mark.parametrize("cell", CELLS)
def test_one_step_of_the_reference_cell_by_hand(cell):
    for tensor, got, expected in BY_HAND[cell]():
        assert_close(f"{cell} reference vs by hand: {tensor}", got, expected, FLOAT64_ATOL)


# ---- one step in each framework's own cell ----

def torch_step(peer, arrays, x, state):
    """A real nn.LSTMCell / nn.GRUCell holding (weight_ih, weight_hh, bias_ih, bias_hh)."""
    import torch

    cell = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[peer.cell](
        x.shape[1], state[0].shape[1])
    with torch.no_grad():
        for name, array in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), arrays,
                               strict=True):
            getattr(cell, name).copy_(torch.from_numpy(array))
        given = tuple(torch.from_numpy(part) for part in state)
        new = cell(torch.from_numpy(x), given if peer.cell == "lstm" else given[0])
    return tuple(part.numpy() for part in (new if peer.cell == "lstm" else (new,)))


def keras_step(peer, arrays, x, state):
    """A real keras.layers.LSTMCell / GRUCell holding (kernel, recurrent_kernel, bias)."""
    import keras

    H = state[0].shape[1]
    cell = (keras.layers.LSTMCell(H) if peer.cell == "lstm"
            else keras.layers.GRUCell(H, reset_after=peer.reset_after))
    cell.build(x.shape)
    cell.set_weights(list(arrays))
    _, new = cell(x, list(state))  # Keras returns (output, [h, c]) or (output, [h])
    return tuple(keras.ops.convert_to_numpy(part) for part in new)


def tf1_step(peer, arrays, x, state):
    """TF1's LSTMCell / BasicLSTMCell and GRUCell, as rnn_cell_impl.py writes them.

    LSTM: gates = [x, h] @ kernel + bias, split i, j, f, o; forget_bias is added at run time.
    GRU: r, u from the gates kernel, then the candidate from [x, r * h]: reset BEFORE.
    """
    sigmoid = reference.sigmoid
    if peer.cell == "lstm":
        kernel, bias = arrays
        h, c = state
        i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ kernel + bias, 4, axis=1)
        c_next = sigmoid(f + peer.forget_bias) * c + sigmoid(i) * np.tanh(j)
        return sigmoid(o) * np.tanh(c_next), c_next
    gates_kernel, gates_bias, candidate_kernel, candidate_bias = arrays
    (h,) = state
    r, u = np.split(sigmoid(np.concatenate([x, h], axis=1) @ gates_kernel + gates_bias), 2, axis=1)
    n = np.tanh(np.concatenate([x, r * h], axis=1) @ candidate_kernel + candidate_bias)
    return (u * h + (1 - u) * n,)


def onnx_step(peer, arrays, x, state):
    """ONNX's LSTM and GRU operators (default activations, no peepholes), as the spec writes them.

    LSTM gates i, o, f, c; GRU gates z, r, h, with linear_before_reset choosing where r acts.
    """
    sigmoid = reference.sigmoid
    W, R, B = arrays
    G = GATES[peer.cell] * R.shape[1]
    Wb, Rb = B[:G], B[G:]
    if peer.cell == "lstm":
        h, c = state
        i, o, f, g = np.split(x @ W.T + h @ R.T + Wb + Rb, 4, axis=1)
        c_next = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c_next), c_next
    (h,) = state
    (Wz, Wr, Wh), (Rz, Rr, Rh) = np.split(W, 3), np.split(R, 3)
    (Wbz, Wbr, Wbh), (Rbz, Rbr, Rbh) = np.split(Wb, 3), np.split(Rb, 3)
    z = sigmoid(x @ Wz.T + h @ Rz.T + Wbz + Rbz)
    r = sigmoid(x @ Wr.T + h @ Rr.T + Wbr + Rbr)
    if peer.reset_after:  # linear_before_reset = 1
        n = np.tanh(x @ Wh.T + r * (h @ Rh.T + Rbh) + Wbh)
    else:
        n = np.tanh(x @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh)
    return ((1 - z) * n + z * h,)


# The real cells run in float32 and are held to STATE_ATOL; the equations run in float64,
# on float64 arrays, and are held to FLOAT64_ATOL.
STEPS = {"torch": (torch_step, np.float32, STATE_ATOL),
         "keras": (keras_step, np.float32, STATE_ATOL),
         "tf1": (tf1_step, np.float64, FLOAT64_ATOL),
         "onnx": (onnx_step, np.float64, FLOAT64_ATOL)}
STEP_PEERS = [
    Peer("torch", "lstm"),
    Peer("keras", "lstm"),
    *(Peer("tf1", "lstm", forget_bias=bias, tf1_cell="LSTMCell") for bias in (0.0, 1.0, -0.7)),
    Peer("onnx", "lstm"),
    Peer("torch", "gru"),
    Peer("keras", "gru"),
    Peer("keras", "gru", reset_after=False),
    Peer("tf1", "gru", reset_after=False, tf1_cell="GRUCell"),
    Peer("onnx", "gru"),
    Peer("onnx", "gru", reset_after=False),
]
WIDTHS = [pytest.param(5, 5, id="in=H"), pytest.param(3, 5, id="in<H")]


@pytest.mark.parametrize(("inputs", "hidden"), WIDTHS)
@pytest.mark.parametrize("peer", STEP_PEERS, ids=lambda peer: f"{peer.cell}-{peer}")
def test_one_step_of_the_reference_cell_is_each_frameworks_step(rng, peer, inputs, hidden):
    step, dtype, atol = STEPS[peer.framework]
    arrays = peer.random_arrays(rng, inputs, hidden, dtype)
    x = rng.normal(size=(3, inputs)).astype(dtype)  # (B, in)
    state = random_state(rng, peer.cell, 3, hidden, dtype)
    expected = step_function(peer.cell, peer.reset_after)(x, state, *peer.reference_params(arrays))
    got = step(peer, arrays, x, state)
    how = "real cell" if atol == STATE_ATOL else "equations"
    for part, g, e in zip(STATE_PARTS[peer.cell], got, expected, strict=True):
        assert_close(f"{peer.cell}: {peer} ({how}) vs the reference, one step, {part}", g, e, atol)
