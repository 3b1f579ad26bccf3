"""Greedy and beam search over hand-made and random step functions (NumPy only).

Legend: B batch, K beam size, N tokens per step, T max_len, V vocabulary, L layers, H hidden.
"""

import itertools
import re

import numpy as np
import pytest

from shared.core.tokens import BOS, EOS, PAD
from shared.decoding.search import beam_search, greedy_search

X, Y = 3, 4  # two ordinary tokens for the hand-made tables


def _automaton(calls, rng):
    """Emits 4, 5, 6, 7, 4, ... while its countdown state is positive, then EOS.

    The next token depends on the token fed (so the search must feed its own
    predictions) and on the state (so the state must be carried between steps).
    """

    def step(tokens, state):
        calls.append(tokens.copy())
        (remaining,) = state  # (1, N, 1)
        follow = np.where(tokens >= 4, 4 + (tokens - 3) % 4, 4)  # (N,)
        target = np.where(remaining[0, :, 0] > 0, follow, EOS)  # (N,)
        logits = rng.standard_normal((len(tokens), 8)).astype(np.float32)  # (N, V)
        logits[np.arange(len(tokens)), target] = logits.max() + 1.0
        return logits, (remaining - 1,)

    return step


def _countdown(*counts):
    return (np.array(counts, dtype=np.float32)[None, :, None],)  # (1, B, 1)


def _rnn(rng, vocab, layers=2, hidden=5, embed=4, eos_bias=1.0, banned=()):
    """A random two-layer recurrent step: logits depend on every token fed so far.

    Tokens in ``banned`` get logit -inf, as PAD and BOS would in a trained model.
    """
    emb = rng.standard_normal((vocab, embed))  # (V, E)
    w_x = [rng.standard_normal((embed if k == 0 else hidden, hidden)) for k in range(layers)]
    w_h = [rng.standard_normal((hidden, hidden)) * 0.7 for _ in range(layers)]
    w_out = rng.standard_normal((hidden, vocab)) * 2.0  # (H, V)
    bias = np.zeros(vocab)
    bias[EOS] = eos_bias
    bias[list(banned)] = -np.inf

    def step(tokens, state):
        h, c = state  # each (L, N, H)
        x = emb[tokens]  # (N, E)
        new_h, new_c = [], []
        for k in range(layers):
            c_k = 0.6 * c[k] + 0.4 * np.tanh(x @ w_x[k] + h[k] @ w_h[k])  # (N, H)
            x = np.tanh(c_k)  # (N, H)
            new_h.append(x)
            new_c.append(c_k)
        logits = (x @ w_out + bias).astype(np.float32)  # (N, V)
        return logits, (np.stack(new_h), np.stack(new_c))

    def initial(batch):
        return tuple(rng.standard_normal((layers, batch, hidden)) for _ in range(2))

    return step, initial


def _random_tree(vocab):
    """A step whose logits are a fixed pseudo-random function of the whole prefix.

    The state is a number that codes the prefix fed so far (each row starts
    from its own), so a hypothesis given another one's state gets wrong logits.
    """

    def step(tokens, state):
        (code,) = state  # (1, N, 1)
        code = code * (vocab + 1) + tokens[None, :, None] + 1  # (1, N, 1) one code per prefix
        phase = code[0] * 12.9898 + np.arange(vocab) * 78.233  # (N, V)
        return 4.0 * (np.sin(phase) * 43758.5453 % 1.0), (code,)  # (N, V) in [0, 4)

    return step


def _markov(table):
    """A step whose next-token probabilities depend only on the token fed."""
    log_probs = np.log(np.maximum(np.asarray(table, dtype=np.float64), 1e-12))  # (V, V)

    def step(tokens, state):
        (steps,) = state  # (1, N, 1)
        return log_probs[tokens], (steps + 1,)

    return step


def _uniform(vocab=5):
    return [1.0 / vocab] * vocab


# PAD, BOS, EOS, A, Y: rows are "after this token", columns the next token's probability.
BEAM_BEATS_GREEDY = [
    _uniform(),
    [0, 0, 0.1, 0.5, 0.4],  # after BOS: X looks best ...
    _uniform(),
    [0, 0, 0.2, 0.4, 0.4],  # ... but after X nothing is likely
    [0, 0, 0.9, 0.05, 0.05],  # after Y the answer ends confidently
]
SHORT_VERSUS_LONG = [
    _uniform(),
    [0, 0, 0.5, 0.4, 0.1],  # after BOS: stopping at once is the likeliest single step
    _uniform(),
    [0, 0, 0.9, 0.05, 0.05],  # after X: stop, almost surely
    _uniform(),
]

CUT_VERSUS_SHORT = [
    _uniform(),
    [0, 0, 0.45, 0.55, 0],  # after BOS: stop, or go on with X
    _uniform(),
    [0, 0, 0.4, 0.6, 0],  # after X: X again is likelier than stopping
    _uniform(),
]


def _score(table, sequence):
    """Sum of log-probs and its length-normalised value for a sequence ending in EOS."""
    log_probs = np.log(np.maximum(np.asarray(table), 1e-12))
    previous = [BOS, *sequence[:-1]]
    total = sum(log_probs[p, n] for p, n in zip(previous, sequence, strict=True))
    return total, total / len(sequence)


def _no_steps(batch):
    return (np.zeros((1, batch, 1)),)


# --- greedy ---------------------------------------------------------------------------------


def test_greedy_follows_the_automaton_and_stops_early(rng):
    calls = []
    out = greedy_search(_automaton(calls, rng), _countdown(2, 0, 3), batch_size=3, max_len=8)
    expected = [
        [4, 5, EOS, PAD, PAD, PAD, PAD, PAD],
        [EOS, PAD, PAD, PAD, PAD, PAD, PAD, PAD],
        [4, 5, 6, EOS, PAD, PAD, PAD, PAD],
    ]
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int64 and out.shape == (3, 8)
    # One call per generated position, stopping once the last row emits EOS at t = 3;
    # each call gets one token per row: the previous prediction, never the prefix.
    assert len(calls) == 4
    for tokens in calls:
        assert tokens.shape == (3,) and tokens.dtype == np.int64
    np.testing.assert_array_equal(calls[0], [BOS, BOS, BOS])
    np.testing.assert_array_equal(calls[1], [4, EOS, 4])
    np.testing.assert_array_equal(calls[2], [5, PAD, 5])
    np.testing.assert_array_equal(calls[3], [EOS, PAD, 6])


def test_greedy_cuts_at_max_len_without_eos(rng):
    calls = []
    out = greedy_search(_automaton(calls, rng), _countdown(10, 1), batch_size=2, max_len=5)
    np.testing.assert_array_equal(out, [[4, 5, 6, 7, 4], [4, EOS, PAD, PAD, PAD]])
    assert len(calls) == 5


def test_greedy_one_token(rng):
    out = greedy_search(_automaton([], rng), _countdown(3, 0), batch_size=2, max_len=1)
    np.testing.assert_array_equal(out, [[4], [EOS]])


def test_ties_go_to_the_lowest_id_and_the_earliest_answer():
    def step(tokens, state):
        logits = np.zeros((len(tokens), 6), np.float32)  # (N, V)
        logits[:, [EOS, 5]] = 1.0
        return logits, state

    np.testing.assert_array_equal(greedy_search(step, None, 2, 3), [[EOS, PAD, PAD]] * 2)
    state = (np.zeros((1, 2, 1)),)
    np.testing.assert_array_equal(beam_search(step, state, 2, 1, 3), [[EOS, PAD, PAD]] * 2)
    # Beam 2 also finds [5, EOS], whose average log-prob ties exactly: the earlier one wins.
    np.testing.assert_array_equal(beam_search(step, state, 2, 2, 3), [[EOS, PAD, PAD]] * 2)


def test_greedy_refuses_bad_max_len_and_bad_logits(rng):
    with pytest.raises(ValueError, match="max_len must be an integer >= 1; got 0"):
        greedy_search(_automaton([], rng), _countdown(1), 1, 0)

    def nan_step(tokens, state):
        return np.full((len(tokens), 5), np.nan), state

    with pytest.raises(ValueError, match="step returned logits with NaN"):
        greedy_search(nan_step, None, 2, 3)

    def flat_step(tokens, state):
        return np.zeros(len(tokens)), state

    with pytest.raises(ValueError, match=r"shape \(N, V\) with N = 2, .*got shape \(2,\)"):
        greedy_search(flat_step, None, 2, 3)


# --- beam -----------------------------------------------------------------------------------


def test_beam_of_one_is_greedy_on_random_steps():
    lengths = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        vocab, batch, max_len = int(rng.integers(4, 10)), int(rng.integers(1, 7)), 1 + seed % 9
        step, initial = _rnn(rng, vocab, eos_bias=float(rng.uniform(0.0, 3.0)))
        state = initial(batch)
        greedy = greedy_search(step, state, batch, max_len)
        beam = beam_search(step, state, batch, beam_size=1, max_len=max_len)
        np.testing.assert_array_equal(beam, greedy, err_msg=f"seed {seed}")
        lengths.extend((greedy != PAD).sum(axis=1) / max_len)
    # Teeth: the seeds cover rows that end early and rows cut at max_len.
    assert min(lengths) < 1.0 and max(lengths) == 1.0


def test_beam_of_two_beats_greedy():
    step = _markov(BEAM_BEATS_GREEDY)
    greedy = greedy_search(step, _no_steps(1), 1, 4)
    beam = beam_search(step, _no_steps(1), 1, beam_size=2, max_len=4)
    np.testing.assert_array_equal(greedy, [[X, X, X, X]])
    np.testing.assert_array_equal(beam, [[Y, EOS, PAD, PAD]])
    # [Y, EOS] averages log(0.4 * 0.9) / 2 = -0.51 per token; greedy's can't beat log(0.5).
    assert _score(BEAM_BEATS_GREEDY, [Y, EOS])[1] == pytest.approx(np.log(0.36) / 2)
    assert np.log(0.36) / 2 > np.log(0.5)


def test_length_normalisation_prefers_the_confident_longer_answer():
    step = _markov(SHORT_VERSUS_LONG)
    beam = beam_search(step, _no_steps(1), 1, beam_size=2, max_len=3)
    np.testing.assert_array_equal(beam, [[X, EOS, PAD]])
    np.testing.assert_array_equal(greedy_search(step, _no_steps(1), 1, 3), [[EOS, PAD, PAD]])
    short_sum, short_mean = _score(SHORT_VERSUS_LONG, [EOS])
    long_sum, long_mean = _score(SHORT_VERSUS_LONG, [X, EOS])
    # By raw sum the one-token answer would win; per token, the longer one does.
    assert short_sum > long_sum and long_mean > short_mean


def _brute_force(step, state, max_len, vocab):
    """Every possible output of one row, scored by running it from the start.

    PAD and BOS are never generated, so they are left out and the softmax
    runs over the tokens that can be.
    """
    others = [token for token in range(vocab) if token not in (EOS, PAD, BOS)]
    sequences = [
        (*body, EOS) for n in range(max_len) for body in itertools.product(others, repeat=n)
    ]
    sequences += list(itertools.product(others, repeat=max_len))
    best, best_score = None, -np.inf
    for sequence in sequences:
        carried, total, fed = state, 0.0, BOS
        for token in sequence:
            logits, carried = step(np.array([fed]), carried)
            x = logits[0].astype(np.float64)
            x[[PAD, BOS]] = -np.inf
            total += x[token] - x.max() - np.log(np.exp(x - x.max()).sum())
            fed = token
        if total / len(sequence) > best_score:
            best, best_score = sequence, total / len(sequence)
    return list(best) + [PAD] * (max_len - len(best))


def test_wide_beam_is_exhaustive():
    vocab, max_len, batch = 6, 3, 10
    step = _random_tree(vocab)
    state = (np.arange(batch, dtype=np.float64)[None, :, None] * 1000 + 17,)  # (1, B, 1)
    beam = beam_search(step, state, batch, beam_size=vocab**max_len, max_len=max_len)
    for row in range(batch):
        expected = _brute_force(step, (state[0][:, row : row + 1],), max_len, vocab)
        np.testing.assert_array_equal(beam[row], expected, err_msg=f"row {row}")
    # Teeth: the rows lead to different answers, and greedy misses some best one.
    assert len({tuple(r) for r in beam}) > 2
    assert (beam != greedy_search(step, state, batch, max_len)).any()


def test_answer_cut_at_max_len_competes_by_its_average():
    step = _markov(CUT_VERSUS_SHORT)
    beam = beam_search(step, _no_steps(1), 1, beam_size=2, max_len=3)
    np.testing.assert_array_equal(beam, [[X, X, X]])
    # log(0.55 * 0.6 * 0.6) / 3 = -0.54 beats [EOS]'s log(0.45) = -0.80, though its sum is lower.
    assert np.log(0.55 * 0.36) < np.log(0.45) < np.log(0.55 * 0.36) / 3


def test_row_stops_once_all_places_have_finished():
    calls = []
    markov = _markov(SHORT_VERSUS_LONG)

    def step(tokens, state):
        calls.append(tokens.copy())
        return markov(tokens, state)

    beam = beam_search(step, _no_steps(1), 1, beam_size=2, max_len=6)
    np.testing.assert_array_equal(beam, [[X, EOS, PAD, PAD, PAD, PAD]])
    # Step 1 finishes [EOS] and keeps [X]; step 2 finishes [X, EOS]: both places closed.
    assert len(calls) == 2


def test_beam_output_format_and_state_selection(rng):
    step, initial = _rnn(rng, vocab=7, eos_bias=2.0, banned=(PAD, BOS))
    batch, beams, max_len = 4, 3, 6
    indices = []

    def select(state, index):
        indices.append(index)
        return tuple(np.take(part, index, axis=1) for part in state)

    out = beam_search(step, initial(batch), batch, beams, max_len, select=select)
    assert out.shape == (batch, max_len) and out.dtype == np.int64
    for row in out:
        ends = np.flatnonzero(row == EOS)
        if ends.size:  # EOS kept, PAD after it, no PAD before it
            assert (row[ends[0] + 1 :] == PAD).all() and (row[: ends[0]] != PAD).all()
    # First the hand-off is copied to each row's K places; later each place
    # continues a hypothesis of its own row.
    np.testing.assert_array_equal(indices[0], np.repeat(np.arange(batch), beams))
    for index in indices[1:]:
        assert index.shape == (batch * beams,)
        np.testing.assert_array_equal(index // beams, np.repeat(np.arange(batch), beams))


def test_beam_refuses_bad_beam_size(rng):
    step, initial = _rnn(rng, vocab=5)
    for bad, got in [(0, "got 0"), (2.0, "got 2.0 (float)")]:
        with pytest.raises(
            ValueError, match=re.escape(f"beam_size must be an integer >= 1; {got}")
        ):
            beam_search(step, initial(1), 1, bad, 4)


def test_pad_and_bos_are_never_generated():
    """A model that scores PAD and BOS highest still answers with real tokens."""
    vocab, batch = 6, 3

    def step(tokens, state):
        logits = np.zeros((len(tokens), vocab))  # (N, V)
        logits[:, PAD], logits[:, BOS], logits[:, 4] = 9.0, 8.0, 1.0
        return logits, state

    for tokens in (
        greedy_search(step, (), batch, 4),
        beam_search(step, (np.zeros((1, batch, 1)),), batch, beam_size=3, max_len=4),
    ):
        np.testing.assert_array_equal(tokens, np.full((batch, 4), 4))


def _never_called(tokens, state):
    raise AssertionError("the search took a step although its arrays cannot fit")


def test_a_search_too_big_for_memory_is_refused_before_its_first_step():
    """Sizes far past any machine: refused with the figure and what to lower, at once."""
    with pytest.raises(ValueError) as refused:
        beam_search(_never_called, (np.zeros((1, 3, 2)),), 3, 100_000, 1_000_000)
    assert str(refused.value) == (
        "beam search with beam_size 100000 and max_len 1000000 over 3 questions would need "
        "about 4,470 GiB of memory, over the 1 GiB cap; lower beam_size or max_len, or "
        "decode fewer questions at once"
    )
    with pytest.raises(ValueError, match=re.escape(
        "greedy search with max_len 1000000000 over 1000 questions would need about 7,451 GiB "
        "of memory, over the 1 GiB cap; lower max_len, or decode fewer questions at once")):
        greedy_search(_never_called, None, 1000, 10**9)

