"""The NumPy reference, checked against hand computation and against itself on simpler inputs.

The backends are compared with this module, so it must be right on its own:
one step by hand, then masking, reverse reading, the bidirectional hand-off,
teacher-forced decoding and greedy decoding.

Shape legend: B batch, S source length, T target length, E embedding, H hidden, L layers.
"""

import math

import numpy as np
import pytest

from shared import layout, reference
from shared.core.config import Seq2SeqConfig
from shared.core.tokens import BOS, EOS, PAD


def assert_close(name, actual, expected, atol=1e-12):
    """Fail naming the tensor and its largest difference (float64 on both sides)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    largest = float(np.max(np.abs(actual - expected), initial=0.0))
    assert largest <= atol, f"{name}: largest difference {largest:.3g} > {atol}"


def random_layer(rng, inputs, hidden):
    """Random (W_ih (4H, in), W_hh (4H, H), b_ih (4H,), b_hh (4H,))."""
    return (
        rng.uniform(-0.5, 0.5, (4 * hidden, inputs)),
        rng.uniform(-0.5, 0.5, (4 * hidden, hidden)),
        rng.uniform(-0.5, 0.5, 4 * hidden),
        rng.uniform(-0.5, 0.5, 4 * hidden),
    )


def test_sigmoid():
    x = np.array([-800.0, -2.0, 0.0, 0.5, 800.0])
    expected = [0.0, 1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-0.5)), 1.0]
    assert_close("sigmoid", reference.sigmoid(x), expected, atol=1e-15)


def test_cell_matches_one_step_by_hand():
    # One row, two inputs, one hidden unit: each gate is a single number.
    x, h, c = [0.5, -1.0], 0.2, -0.3
    W_ih = [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6], [0.7, 0.8]]  # rows i, f, g, o
    W_hh = [0.9, -1.0, 1.1, -1.2]
    b_ih = [0.01, 0.02, 0.03, 0.04]
    b_hh = [-0.05, 0.06, -0.07, 0.08]

    def pre(k):  # W_i* x + b_i* + W_h* h + b_h* for gate row k
        return W_ih[k][0] * x[0] + W_ih[k][1] * x[1] + b_ih[k] + W_hh[k] * h + b_hh[k]

    def sigma(z):
        return 1 / (1 + math.exp(-z))

    i, f, g, o = sigma(pre(0)), sigma(pre(1)), math.tanh(pre(2)), sigma(pre(3))
    c_next = f * c + i * g
    h_next = o * math.tanh(c_next)

    got_h, got_c = reference.lstm_cell(
        np.array([x]),
        np.array([[h]]),
        np.array([[c]]),
        np.array(W_ih),
        np.array(W_hh)[:, None],
        np.array(b_ih),
        np.array(b_hh),
    )
    assert_close("h'", got_h, [[h_next]], atol=1e-15)
    assert_close("c'", got_c, [[c_next]], atol=1e-15)


def test_padded_steps_keep_the_state(rng):
    params = random_layer(rng, 3, 4)
    x = rng.normal(size=(3, 5, 3))  # (B, T, in)
    lengths = np.array([5, 2, 0])
    h0, c0 = rng.uniform(-0.5, 0.5, (2, 3, 4))  # nonzero, so "kept" is visible
    outputs, (h, c) = reference.lstm_layer(x, lengths, h0, c0, *params)

    # Row 0 has no padding: stepping the cell by hand gives the same.
    h_row, c_row = h0[:1], c0[:1]
    for t in range(5):
        h_row, c_row = reference.lstm_cell(x[:1, t], h_row, c_row, *params)
        assert_close(f"row 0 output t={t}", outputs[0, t], h_row[0])
    assert_close("row 0 h", h[0], h_row[0])
    assert_close("row 0 c", c[0], c_row[0])

    # Row 1 ends where its 2 real steps end, whatever the padding holds.
    alone, (h_alone, c_alone) = reference.lstm_layer(x[1:2, :2], [2], h0[1:2], c0[1:2], *params)
    assert_close("row 1 outputs", outputs[1, :2], alone[0])
    assert_close("row 1 h", h[1], h_alone[0])
    assert_close("row 1 c", c[1], c_alone[0])
    np.testing.assert_array_equal(outputs[1, 2:], 0.0)

    # Row 2 has no real steps: it keeps (h0, c0) exactly and outputs zeros.
    np.testing.assert_array_equal(h[2], h0[2])
    np.testing.assert_array_equal(c[2], c0[2])
    np.testing.assert_array_equal(outputs[2], 0.0)

    # What the padding holds changes nothing.
    noisy = x.copy()
    noisy[1, 2:] = rng.normal(size=(3, 3))
    noisy[2] = rng.normal(size=(5, 3))
    for reverse in (False, True):
        clean = reference.lstm_layer(x, lengths, h0, c0, *params, reverse=reverse)
        dirty = reference.lstm_layer(noisy, lengths, h0, c0, *params, reverse=reverse)
        np.testing.assert_array_equal(dirty[0], clean[0])
        np.testing.assert_array_equal(dirty[1][0], clean[1][0])


def test_reverse_starts_at_the_last_real_token(rng):
    params = random_layer(rng, 3, 4)
    x = rng.normal(size=(4, 6, 3))  # (B, T, in), padding holds random numbers too
    lengths = np.array([6, 3, 0, 1])
    h0, c0 = rng.uniform(-0.5, 0.5, (2, 4, 4))
    outputs, (h, c) = reference.lstm_layer(x, lengths, h0, c0, *params, reverse=True)
    for row, n in enumerate(lengths):
        # Forward over the row's real part, reversed by hand, then put back in time order.
        flipped = x[row : row + 1, :n][:, ::-1]
        expected, (h_exp, c_exp) = reference.lstm_layer(
            flipped, [n], h0[row : row + 1], c0[row : row + 1], *params
        )
        assert_close(f"row {row} outputs", outputs[row, :n], expected[0, ::-1])
        assert_close(f"row {row} h", h[row], h_exp[0])
        assert_close(f"row {row} c", c[row], c_exp[0])
        np.testing.assert_array_equal(outputs[row, n:], 0.0)

    # Row 1 by hand: the first step reads x[1, 2] (its last real token), not x[1, 5].
    h_row, c_row = h0[1:2], c0[1:2]
    for t in (2, 1, 0):
        h_row, c_row = reference.lstm_cell(x[1:2, t], h_row, c_row, *params)
        assert_close(f"row 1 output t={t}", outputs[1, t], h_row[0])


CONFIG = Seq2SeqConfig(9, 7, 4, 3, num_layers=2, bidirectional=True)
SRC = np.array([[4, 5, 6, 7, 8], [8, 7, PAD, PAD, PAD], [5, 5, 5, 6, PAD], [PAD] * 5])  # (B, S)


def test_bidirectional_encode_concatenates_forward_then_backward():
    weights = layout.random_weights(CONFIG, seed=1)
    h, c = reference.encode(weights, CONFIG, SRC)
    assert h.shape == c.shape == (2, 4, 6)  # (L, B, D*H)

    lengths = np.array([5, 2, 4, 0])
    x = weights["encoder.embedding"].astype(np.float64)[SRC]  # (B, S, E)
    zeros = np.zeros((4, 3))
    for k in range(2):
        fw = layout.join_gates(weights, layout.layer_prefix("encoder", k, "forward"))
        bw = layout.join_gates(weights, layout.layer_prefix("encoder", k, "backward"))
        out_fw, (h_fw, c_fw) = reference.lstm_layer(x, lengths, zeros, zeros, *fw)
        out_bw, (h_bw, c_bw) = reference.lstm_layer(x, lengths, zeros, zeros, *bw, reverse=True)
        assert_close(f"layer {k} h", h[k], np.concatenate([h_fw, h_bw], axis=1))
        assert_close(f"layer {k} c", c[k], np.concatenate([c_fw, c_bw], axis=1))
        # Teeth: the other order is a different hand-off.
        assert np.max(np.abs(h[k] - np.concatenate([h_bw, h_fw], axis=1))) > 1e-3
        x = np.concatenate([out_fw, out_bw], axis=2)  # (B, S, 2H): the next layer's input

    np.testing.assert_array_equal(h[:, 3], 0.0)  # the all-PAD row hands off zeros
    np.testing.assert_array_equal(c[:, 3], 0.0)


def test_decode_state_is_each_rows_last_real_token(rng):
    weights = layout.random_weights(CONFIG, seed=2)
    state = reference.encode(weights, CONFIG, SRC)
    tgt_in = np.array([[BOS, 4, 5, 6], [BOS, 6, PAD, PAD], [BOS, PAD, PAD, PAD], [PAD] * 4])
    logits, (h, c) = reference.decode(weights, CONFIG, tgt_in, state)
    assert logits.shape == (4, 4, 7)
    for row, n in ((0, 4), (1, 2), (2, 1)):
        alone_state = (state[0][:, row : row + 1], state[1][:, row : row + 1])
        alone, (h_alone, c_alone) = reference.decode(
            weights, CONFIG, tgt_in[row : row + 1, :n], alone_state
        )
        assert_close(f"row {row} logits", logits[row, :n], alone[0])
        assert_close(f"row {row} h", h[:, row], h_alone[:, 0])
        assert_close(f"row {row} c", c[:, row], c_alone[:, 0])
    np.testing.assert_array_equal(h[:, 3], state[0][:, 3])  # an all-PAD row keeps its state
    np.testing.assert_array_equal(c[:, 3], state[1][:, 3])
    np.testing.assert_array_equal(reference.forward(weights, CONFIG, SRC, tgt_in), logits)


def test_greedy_matches_teacher_forcing_and_stops_at_eos():
    # Seed 7 at scale 1.0 makes rows that end early and rows that never do.
    weights = layout.random_weights(CONFIG, seed=7, scale=1.0)
    tokens = reference.greedy_decode(weights, CONFIG, SRC, max_len=6)
    assert tokens.shape == (4, 6) and tokens.dtype == np.int64
    has_eos = (tokens == EOS).any(axis=1)
    assert has_eos.any() and not has_eos.all(), f"the seed no longer mixes endings:\n{tokens}"

    for row in range(4):
        ends = np.flatnonzero(tokens[row] == EOS)
        if ends.size:  # EOS kept once, PAD after it
            assert ends.size == 1, tokens[row]
            np.testing.assert_array_equal(tokens[row, ends[0] + 1 :], PAD)

    # Each token is the argmax of the teacher-forced logits given the tokens before it.
    for t in range(6):
        tgt_in = np.concatenate([np.full((4, 1), BOS), tokens[:, :t]], axis=1)  # (B, t + 1)
        last = reference.forward(weights, CONFIG, SRC, tgt_in)[:, t]  # (B, V)
        running = ~(tokens[:, :t] == EOS).any(axis=1)  # rows still producing at step t
        np.testing.assert_array_equal(tokens[running, t], last[running].argmax(axis=1))


@pytest.mark.parametrize("max_len", [1, 5])
def test_greedy_ties_and_immediate_eos(max_len):
    weights = layout.random_weights(CONFIG, seed=3)
    weights["decoder.output.W"] = np.zeros((7, 6), np.float32)
    weights["decoder.output.b"] = np.array([0, 0, 0, 0, 1, 1, 0], np.float32)
    tokens = reference.greedy_decode(weights, CONFIG, SRC, max_len)
    np.testing.assert_array_equal(tokens, np.full((4, max_len), 4))  # a tie goes to the lower id

    weights["decoder.output.b"] = np.array([0, 0, 2, 0, 1, 1, 0], np.float32)
    tokens = reference.greedy_decode(weights, CONFIG, SRC, max_len)
    expected = np.full((4, max_len), PAD)
    expected[:, 0] = EOS
    np.testing.assert_array_equal(tokens, expected)
