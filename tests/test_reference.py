"""The NumPy reference model, checked against itself on simpler inputs.

The engines are compared with this model, so it must be right on its own.  Its
cells and layers are checked on the first two rungs (test_ladder_1_cell.py: one
step by hand and against every framework's cell; test_ladder_2_layer.py: masking
and reverse reading); here the model built from them: the bidirectional hand-off,
teacher-forced decoding and greedy decoding.

Shape legend: B batch, S source length, T target length, E embedding, H hidden, L layers.
"""

import numpy as np
import pytest

from shared import layout, reference
from shared.core.compare import FLOAT64_ATOL, assert_close
from shared.core.config import Seq2SeqConfig
from shared.core.tokens import BOS, EOS, PAD

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
        assert_close(f"layer {k} h", h[k], np.concatenate([h_fw, h_bw], axis=1), FLOAT64_ATOL)
        assert_close(f"layer {k} c", c[k], np.concatenate([c_fw, c_bw], axis=1), FLOAT64_ATOL)
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
        assert_close(f"row {row} logits", logits[row, :n], alone[0], FLOAT64_ATOL)
        assert_close(f"row {row} h", h[:, row], h_alone[:, 0], FLOAT64_ATOL)
        assert_close(f"row {row} c", c[:, row], c_alone[:, 0], FLOAT64_ATOL)
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
