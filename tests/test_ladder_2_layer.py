"""Rung 2 of the ladder: one layer over a padded batch, the reference and every framework's.

First the reference layer on its own (``shared.reference.cells.rnn_layer``): a
padded step keeps the state, and reading backwards starts at each row's last real
token.  Then the converters of ``shared.layout``, proven by running: random
arrays in one framework's layout run in that framework's real layer, the
converted arrays in the other's, and both must compute what the reference
computes, over rows of mixed lengths, for every (cell, framework pair) of the
grid, both ways (Keras, the converters' hub, is one side of each pair):

    LSTM  Keras <-> nn.LSTM, ONNX Runtime, ONNX's reference evaluator, TF1 LSTMCell
          (forget_bias 1, -0.7) and BasicLSTMCell
    GRU   Keras (reset_after True) <-> nn.GRU, ONNX (linear_before_reset 1);
          Keras (reset_after False) <-> ONNX (linear_before_reset 0), TF1 GRUCell

A comparison that cannot fail proves nothing, so each mistake a converter could
make (kernels swapped, gates left in the source's order, TF1's forget_bias
forgotten, the reset on the wrong side) is made here on purpose and must show.
Last, the converters on their own: exact round trips and refusals that name the
argument.  A failure names the cell, the framework pair, the tensor and the
largest difference.

Shape legend: B batch, T time, H hidden, D directions, G gates (4 for an LSTM, 3 for a GRU).
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import layout
from shared.core.compare import FLOAT64_ATOL, STATE_ATOL, assert_close, max_abs_diff
from shared.reference.cells import rnn_layer, step_function
from tests.peers import CELLS, FULL_ROWS, LENGTHS, STATE_PARTS, Peer, random_state, run_layer
from tests.refusal import refusal


def sequence(rng, cell, inputs, hidden, steps=4, dtype=np.float32):
    """x (B, T, in), padding holding noise like the real steps, and a nonzero initial state."""
    x = rng.normal(size=(len(LENGTHS), steps, inputs)).astype(dtype)
    return x, random_state(rng, cell, len(LENGTHS), hidden, dtype)


# ---- the reference layer on its own ----

@pytest.mark.parametrize("cell", CELLS)
def test_a_padded_step_keeps_the_state(rng, cell):
    params = Peer("torch", cell).random_arrays(rng, 3, 4, np.float64)
    x = rng.normal(size=(3, 5, 3))  # (B, T, in)
    lengths = np.array([5, 2, 0])
    state0 = random_state(rng, cell, 3, 4, np.float64)
    outputs, state = rnn_layer(cell, x, lengths, state0, params)
    step = step_function(cell)

    # Row 0 has no padding: stepping the cell by hand gives the same.
    row = tuple(part[:1] for part in state0)
    for t in range(5):
        row = step(x[:1, t], row, *params)
        assert_close(f"{cell} row 0 output t={t}", outputs[0, t], row[0][0], FLOAT64_ATOL)
    for name, got, by_hand in zip(STATE_PARTS[cell], state, row, strict=True):
        assert_close(f"{cell} row 0 {name}", got[0], by_hand[0], FLOAT64_ATOL)

    # Row 1 ends where its 2 real steps end, whatever the padding holds.
    alone, alone_state = rnn_layer(cell, x[1:2, :2], [2], tuple(p[1:2] for p in state0), params)
    assert_close(f"{cell} row 1 outputs", outputs[1, :2], alone[0], FLOAT64_ATOL)
    for name, got, expected in zip(STATE_PARTS[cell], state, alone_state, strict=True):
        assert_close(f"{cell} row 1 {name}", got[1], expected[0], FLOAT64_ATOL)
    np.testing.assert_array_equal(outputs[1, 2:], 0.0)

    # Row 2 has no real steps: it keeps its initial state exactly and outputs zeros.
    for name, got, given in zip(STATE_PARTS[cell], state, state0, strict=True):
        np.testing.assert_array_equal(got[2], given[2], err_msg=f"{cell} row 2 {name}")
    np.testing.assert_array_equal(outputs[2], 0.0)

    # What the padding holds changes nothing, read forwards or backwards.
    noisy = x.copy()
    noisy[1, 2:] = rng.normal(size=(3, 3))
    noisy[2] = rng.normal(size=(5, 3))
    for reverse in (False, True):
        clean = rnn_layer(cell, x, lengths, state0, params, reverse=reverse)
        dirty = rnn_layer(cell, noisy, lengths, state0, params, reverse=reverse)
        np.testing.assert_array_equal(dirty[0], clean[0])
        for dirty_part, clean_part in zip(dirty[1], clean[1], strict=True):
            np.testing.assert_array_equal(dirty_part, clean_part)


@pytest.mark.parametrize("cell", CELLS)
def test_reading_backwards_starts_at_the_last_real_token(rng, cell):
    params = Peer("torch", cell).random_arrays(rng, 3, 4, np.float64)
    x = rng.normal(size=(4, 6, 3))  # (B, T, in), padding holds random numbers too
    lengths = np.array([6, 3, 0, 1])
    state0 = random_state(rng, cell, 4, 4, np.float64)
    outputs, state = rnn_layer(cell, x, lengths, state0, params, reverse=True)
    for row, n in enumerate(lengths):
        # Forward over the row's real part, reversed by hand, then put back in time order.
        expected, expected_state = rnn_layer(cell, x[row : row + 1, :n][:, ::-1], [n],
                                             tuple(p[row : row + 1] for p in state0), params)
        assert_close(f"{cell} row {row} outputs", outputs[row, :n], expected[0, ::-1],
                     FLOAT64_ATOL)
        for name, got, want in zip(STATE_PARTS[cell], state, expected_state, strict=True):
            assert_close(f"{cell} row {row} {name}", got[row], want[0], FLOAT64_ATOL)
        np.testing.assert_array_equal(outputs[row, n:], 0.0)

    # Row 1 by hand: the first step reads x[1, 2] (its last real token), not x[1, 5].
    row = tuple(part[1:2] for part in state0)
    for t in (2, 1, 0):
        row = step_function(cell)(x[1:2, t], row, *params)
        assert_close(f"{cell} row 1 output t={t}", outputs[1, t], row[0][0], FLOAT64_ATOL)


# ---- one layer in two frameworks: the converted arrays compute the same ----

# Every peer but Keras, each paired with the Keras layer that computes the same.
PEERS = [
    Peer("torch", "lstm"),
    Peer("onnx", "lstm"),
    Peer("onnx", "lstm", runtime="onnx.reference"),
    Peer("tf1", "lstm", forget_bias=1.0, tf1_cell="LSTMCell"),
    Peer("tf1", "lstm", forget_bias=-0.7, tf1_cell="LSTMCell"),
    Peer("tf1", "lstm", forget_bias=1.0, tf1_cell="BasicLSTMCell"),
    Peer("torch", "gru"),
    Peer("onnx", "gru"),
    Peer("onnx", "gru", runtime="onnx.reference"),
    Peer("onnx", "gru", reset_after=False),
    Peer("onnx", "gru", reset_after=False, runtime="onnx.reference"),
    Peer("tf1", "gru", reset_after=False, tf1_cell="GRUCell"),
]
PAIRS = [pair for peer in PEERS for pair in ((peer.keras(), peer), (peer, peer.keras()))]
DIRECTIONS = ["forward", "bidirectional"]


def pair_id(pair) -> str:
    source, target = pair
    return f"{source.cell}-{source}->{target}"


# Each pair once with in == H, where the shapes alone cannot tell an input kernel from a
# recurrent one.  ONNX runs both directions in one node, from arrays stacked (D, ...): with
# ONNX in the pair, both directions too (elsewhere a backward layer is the forward one on
# reversed rows, which the reference layer's tests above cover).  TF1 keeps one kernel over
# [x, h]: with TF1 in the pair, in < H too, where a kernel split at H instead of at in
# shows.  (The round trips below hold every converter's shapes with in < H.)
LAYER_CASES = [
    pytest.param(pair, direction, inputs, hidden,
                 id=f"{pair_id(pair)}-{direction}-in{'=' if inputs == hidden else '<'}H")
    for pair in PAIRS
    for direction in DIRECTIONS
    if direction == "forward" or "onnx" in (pair[0].framework, pair[1].framework)
    for inputs, hidden in ((4, 4), (3, 5))
    if inputs == hidden or "tf1" in (pair[0].framework, pair[1].framework)
]


@pytest.mark.parametrize(("pair", "direction", "inputs", "hidden"), LAYER_CASES)
def test_converted_arrays_compute_the_same_layer_in_both_frameworks(rng, pair, direction, inputs,
                                                                    hidden):
    source, target = pair
    x, state = sequence(rng, source.cell, inputs, hidden)
    # Full rows where either peer ignores lengths (ONNX's reference evaluator: Peer.lengths).
    lengths = FULL_ROWS if FULL_ROWS in (source.lengths, target.lengths) else LENGTHS
    per_direction = [source.random_arrays(rng, inputs, hidden)
                     for _ in range(DIRECTIONS.index(direction) + 1)]
    converted = [target.from_keras(source.to_keras(arrays)) for arrays in per_direction]
    results = {source: run_layer(source, per_direction, x, lengths, state),
               target: run_layer(target, converted, x, lengths, state)}
    for d, arrays in enumerate(per_direction):
        expected_out, expected_state = rnn_layer(
            source.cell, x, lengths, state, source.reference_params(arrays), reverse=d == 1,
            reset_after=source.reset_after)
        for peer, found in results.items():
            role = "source" if peer == source else "converted"
            out, final = found[d]
            what = f"{pair_id(pair)} direction {d}: {peer} ({role})"
            assert_close(f"{what} outputs vs the reference", out, expected_out, STATE_ATOL)
            for name, got, want in zip(STATE_PARTS[source.cell], final, expected_state,
                                       strict=True):
                assert_close(f"{what} {name} vs the reference", got, want, STATE_ATOL)


# Mistakes a converter could make, each made on purpose: (cell, mistake, peer, make), where
# make(peer, keras_arrays) gives the arrays a mistaken converter would hand ``peer``; the
# right answer is the Keras layer's on keras_arrays (kernels in == H: same shapes).
MISTAKES = [
    ("lstm", "kernels swapped", Peer("torch", "lstm"),
     lambda peer, a: peer.from_keras((a[1], a[0], a[2]))),
    ("gru", "kernels swapped", Peer("torch", "gru"),
     lambda peer, a: peer.from_keras((a[1], a[0], a[2]))),
    # Keras's i, f, c, o blocks written as they are, read by ONNX as i, o, f, c.
    ("lstm", "gates left in Keras's order", Peer("onnx", "lstm"),
     lambda peer, a: (a[0].T, a[1].T, np.concatenate([a[2], np.zeros_like(a[2])]))),
    # keras-team/keras#15915: transposed, but Keras's z, r, h left in place of r, z, n.
    ("gru", "gates left in Keras's order", Peer("torch", "gru"),
     lambda peer, a: (a[0].T, a[1].T, a[2][0], a[2][1])),
    # TF1 adds forget_bias when the cell runs; the stored bias lacks it.
    ("lstm", "forget_bias forgotten", Peer("tf1", "lstm", forget_bias=1.0, tf1_cell="LSTMCell"),
     lambda peer, a: Peer("tf1", "lstm", tf1_cell="LSTMCell").from_keras(a)),
    # A reset-after GRU's arrays, run by the node that resets before the product.
    ("gru", "the reset on the wrong side", Peer("onnx", "gru", reset_after=False),
     lambda peer, a: Peer("onnx", "gru").from_keras(a)),
]


@pytest.mark.parametrize(("cell", "mistake", "peer", "make"), MISTAKES,
                         ids=[f"{cell}-{mistake}" for cell, mistake, *_ in MISTAKES])
def test_each_converter_mistake_shows_in_the_outputs(rng, cell, mistake, peer, make):
    x, state = sequence(rng, cell, 4, 4)
    keras_peer = Peer("keras", cell)  # a GRU resets after the product: PyTorch's equations
    keras_arrays = keras_peer.random_arrays(rng, 4, 4)
    (right, _), = run_layer(keras_peer, [keras_arrays], x, LENGTHS, state)
    (wrong, _), = run_layer(peer, [make(peer, keras_arrays)], x, LENGTHS, state)
    diff, where = max_abs_diff(wrong, right)
    assert diff > 100 * STATE_ATOL, (f"{cell}: {mistake} moved {peer}'s outputs by only "
                                     f"{diff:.3g} at {where}; the check has no teeth")


# ---- the converters on their own: round trips and refusals ----

ROUND_TRIPS = [
    Peer("torch", "lstm"),
    Peer("onnx", "lstm"),
    Peer("tf1", "lstm", tf1_cell="LSTMCell"),
    Peer("tf1", "lstm", forget_bias=1.0, tf1_cell="LSTMCell"),
    Peer("torch", "gru"),
    Peer("onnx", "gru"),
    Peer("onnx", "gru", reset_after=False),
    Peer("tf1", "gru", reset_after=False, tf1_cell="GRUCell"),
]


def what_survives(peer, arrays) -> tuple:
    """What a trip through Keras keeps of ``peer``'s arrays.

    Where the equations only ever use the sum of the input and recurrent biases (an LSTM's
    in PyTorch and ONNX, a GRU's that resets before the product in ONNX), Keras keeps one
    bias, the sum: it comes back as the first bias, and the second as zeros.  A GRU that
    resets after the product keeps both (b_hn acts inside r * (...)), like everything else.
    """
    if peer.framework == "torch" and peer.cell == "lstm":
        weight_ih, weight_hh, bias_ih, bias_hh = arrays
        return weight_ih, weight_hh, bias_ih + bias_hh, np.zeros_like(bias_hh)
    if peer.framework == "onnx" and (peer.cell == "lstm" or not peer.reset_after):
        W, R, B = arrays
        half = len(B) // 2
        return W, R, np.concatenate([B[:half] + B[half:], np.zeros(half, B.dtype)])
    return arrays


@pytest.mark.parametrize("peer", ROUND_TRIPS, ids=lambda peer: f"{peer.cell}-{peer}")
def test_a_round_trip_through_keras_keeps_every_number(rng, peer):
    keras_peer = peer.keras()
    keras_arrays = keras_peer.random_arrays(rng, 3, 5)
    there = peer.from_keras(keras_arrays)
    assert [a.shape for a in there] == peer.shapes(3, 5), f"{peer}: {[a.shape for a in there]}"
    for name, back, original in zip(keras_peer.names(), peer.to_keras(there), keras_arrays,
                                    strict=True):
        # TF1's forget_bias goes through b - 1 + 1 in float32, which rounds b to the float32
        # spacing near |b - 1| (about 1.2e-7): that, in that bias, is all that may differ.
        atol = float(np.spacing(np.float32(2.0))) if peer.forget_bias and name == "bias" else 0
        assert_close(f"{peer.cell}: Keras -> {peer} -> Keras, {name}", back, original, atol)

    arrays = peer.random_arrays(rng, 3, 5)
    back = peer.from_keras(peer.to_keras(arrays))
    for name, got, kept in zip(peer.names(), back, what_survives(peer, arrays), strict=True):
        atol = float(np.spacing(np.float32(2.0))) if peer.forget_bias and name == "bias" else 0
        assert_close(f"{peer.cell}: {peer} -> Keras -> {peer}, {name}", got, kept, atol)


def test_reorder_gates_moves_whole_blocks():
    letters = np.array(list("iijjffoo"))  # TF1 order, H = 2
    assert "".join(layout.reorder_gates(letters, "tf1", "torch", axis=0)) == "iiffjjoo"
    onnx = np.array([list("iofc")] * 2)  # (2, 4H) with H = 1, gates along axis 1
    assert ["".join(row) for row in layout.reorder_gates(onnx, "onnx", "ifgo", axis=-1)] == [
        "ifco",
        "ifco",
    ]
    gru = np.array(list("rrzznn"))  # PyTorch's GRU order, H = 2
    assert "".join(layout.reorder_gates(gru, "torch", "keras", axis=0, cell="gru")) == "zzrrnn"


ORDERS = {"lstm": ([*layout.GATE_ORDER, "gofi"], [*layout.GATE_ORDER, "ogif"]),
          "gru": ([*layout.GRU_GATE_ORDER, "nrz"], [*layout.GRU_GATE_ORDER, "znr"])}
REORDERS = [(cell, src, dst) for cell, (sources, targets) in ORDERS.items()
            for src in sources for dst in targets]


@pytest.mark.parametrize(("cell", "src", "dst"), REORDERS)
def test_reorder_gates_round_trips_exactly(rng, cell, src, dst):
    blocks = {"lstm": 4, "gru": 3}[cell]
    array = rng.normal(size=(3, 3 * blocks, 2)).astype(np.float32)
    there = layout.reorder_gates(array, src, dst, axis=1, cell=cell)
    np.testing.assert_array_equal(layout.reorder_gates(there, dst, src, axis=1, cell=cell), array)


_arrays = np.random.default_rng(0)
LSTM_KERAS = Peer("keras", "lstm").random_arrays(_arrays, 3, 5)  # (3, 20), (5, 20), (20,)
LSTM_TORCH = Peer("torch", "lstm").random_arrays(_arrays, 3, 5)  # (20, 3), (20, 5), (20,) x2
GRU_KERAS = Peer("keras", "gru").random_arrays(_arrays, 3, 5)    # (3, 15), (5, 15), (2, 15)
GRU_TORCH = Peer("torch", "gru").random_arrays(_arrays, 3, 5)    # (15, 3), (15, 5), (15,) x2
# Each wrong call and the words its refusal must hold.
REFUSALS = {
    "reorder-length": (lambda: layout.reorder_gates(np.zeros(10), "tf1", "torch", axis=0),
                       "length 10 along axis 0"),
    **{f"reorder-src-{order}": (
        lambda order=order: layout.reorder_gates(np.zeros(8), order, "torch", axis=0),
        "src must be one of keras, torch, tf1, onnx")
       for order in ("pytorch", "ifg", "iffo", "abcd")},
    "reorder-dst": (lambda: layout.reorder_gates(np.zeros(8), "torch", "xyzw", axis=0),
                    "dst must be"),
    "reorder-axis": (lambda: layout.reorder_gates(np.zeros((4, 8)), "torch", "tf1", axis=2),
                     "axis 2 is out of range"),
    "reorder-gru-letters": (
        lambda: layout.reorder_gates(np.zeros(6), "zrh", "torch", axis=0, cell="gru"),
        "permutation of 'rzn' (cell='gru'); got 'zrh'"),
    "lstm-keras-recurrent_kernel": (
        lambda: layout.keras_lstm_to_torch(LSTM_KERAS[0], LSTM_KERAS[1][:4], LSTM_KERAS[2]),
        "recurrent_kernel must have shape (H, 4H) = (5, 20)"),
    "lstm-keras-bias": (
        lambda: layout.keras_lstm_to_onnx(LSTM_KERAS[0], LSTM_KERAS[1], LSTM_KERAS[2][:16]),
        "bias must have shape (4H,) = (20,)", "got (16,)"),
    "lstm-keras-kernel": (
        lambda: layout.keras_lstm_to_tf1(LSTM_KERAS[0][:, :18], *LSTM_KERAS[1:]),
        "kernel must have shape (in, 4H)", "got (3, 18)"),
    "lstm-torch-bias_hh": (
        lambda: layout.torch_lstm_to_keras(*LSTM_TORCH[:3], LSTM_TORCH[3][:5]),
        "bias_hh must have shape (4H,) = (20,)"),
    "lstm-tf1-kernel": (  # 3 rows but H = 5
        lambda: layout.tf1_lstm_to_keras(LSTM_KERAS[0][:, :20][:3, :], LSTM_KERAS[2], 1.0),
        "kernel must have shape (in + H, 4H)"),
    "lstm-onnx-B": (lambda: layout.onnx_lstm_to_keras(*LSTM_TORCH[:3]),
                    "B must have shape (8H,) = (40,)"),
    "gru-torch-reset-before": (
        lambda: layout.keras_gru_to_torch(*GRU_KERAS[:2], GRU_KERAS[2].sum(axis=0)),
        "reset_after=False", "nn.GRU resets after it"),
    "gru-tf1-reset-after": (lambda: layout.keras_gru_to_tf1(*GRU_KERAS),
                            "reset_after=True", "TF1 GRUCell resets before it"),
    "gru-keras-bias": (
        lambda: layout.keras_gru_to_onnx(*GRU_KERAS[:2], GRU_KERAS[2][:, :12]),
        "bias must have shape (2, 3H) = (2, 15)"),
    "gru-keras-recurrent_kernel": (
        lambda: layout.keras_gru_to_torch(GRU_KERAS[0], GRU_KERAS[1][:4], GRU_KERAS[2]),
        "recurrent_kernel must have shape (H, 3H) = (5, 15)"),
    "gru-keras-kernel": (lambda: layout.keras_gru_to_torch(np.zeros((3, 16)), *GRU_KERAS[1:]),
                         "kernel must have shape (in, 3H)", "got (3, 16)"),
    "gru-torch-bias_hh": (lambda: layout.torch_gru_to_keras(*GRU_TORCH[:3], GRU_TORCH[3][:5]),
                          "bias_hh must have shape (3H,) = (15,)"),
    "gru-onnx-linear_before_reset": (
        lambda: layout.onnx_gru_to_keras(*GRU_TORCH[:2], np.zeros(30), linear_before_reset=2),
        "linear_before_reset must be 0 or 1; got 2"),
    "gru-onnx-B": (lambda: layout.onnx_gru_to_keras(*GRU_TORCH[:2], np.zeros(15)),
                   "B must have shape (6H,) = (30,)"),
    "gru-tf1-candidate_kernel": (
        lambda: layout.tf1_gru_to_keras(np.zeros((8, 10)), np.zeros(10), np.zeros((7, 5)),
                                        np.zeros(5)),
        "candidate_kernel must have shape (in + H, H)"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_wrong_array_is_refused_by_name(case):
    call, *words = REFUSALS[case]
    message = refusal(call)
    for piece in words:
        assert piece in message, f"{case}: {piece!r} is not in {message!r}"
