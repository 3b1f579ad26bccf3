"""Decoding search, written once over a backend's one-step function.

After the encoder has read a question, the decoder writes the answer one token
at a time: it is fed BOS, predicts a first token, is fed that token, predicts the
next, and so on until it predicts EOS.  Both backends expose the decoder as a
step function,

    step(tokens, state) -> (logits, state)
        tokens  int64 (N,)     the token each sequence was just given
        state   opaque         the decoder's (h, c) after everything before it
        logits  float (N, V)   raw scores for the next token (before softmax)

and everything else -- which token to pick, when to stop, how to pad -- lives
here, so the Keras and the PyTorch model are searched by the very same code.

Why carry (h, c): an LSTM's state is its summary of everything it has read.
Feeding only the newest token with the state from the previous step gives the
same numbers as re-reading the whole prefix, at one step's cost instead of t.

Output format (both searches): int64 (B, T) with T = max_len exactly; a row
holds the generated tokens, its EOS (kept, so a reader sees the answer ended
rather than ran out of room), then PAD.  A row that never produced EOS is cut
at max_len.  PAD and BOS are never generated: their logits are set to -inf.

Shape legend: B batch, K beam size, N tokens per step (B or B*K), T max_len,
V target vocabulary, L layers, H hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shared.core.budget import check_memory
from shared.core.inputs import check_beam_size, check_max_len
from shared.core.tokens import BOS, EOS, PAD

Step = Callable[[np.ndarray, Any], tuple[Any, Any]]
Select = Callable[[Any, np.ndarray], Any]


def search_bytes(batch_size: int, max_len: int, beam_size: int | None = None) -> int:
    """The bytes of the token arrays a search allocates before its first step.

    Greedy search (``beam_size=None``) holds its int64 (B, T) output.  Beam search
    also holds each hypothesis's tokens so far, int64 (B, K, T), twice at once
    (this step's and the next one's): 16 * B * K * T bytes, the term that grows
    fastest.  The per-step logits (B*K, V) are left out: they do not grow with T.
    """
    output = batch_size * max_len * 8
    if beam_size is None:
        return output
    return output + 2 * batch_size * beam_size * max_len * 8


def check_search_memory(
    batch_size: int, max_len: int, beam_size: int | None = None,
    names: tuple[str, str] = ("beam_size", "max_len"),
) -> None:
    """Refuses a search whose token arrays would not fit (``shared.core.budget.MEMORY_CAP``).

    Args:
        batch_size, max_len, beam_size: as in ``search_bytes``.
        names: what the beam size and max_len are called where they were given,
            for the message: ("beam_size", "max_len") in the API, ("--beam",
            "--max-len") on the command line.

    Raises:
        ValueError: the estimate is over the cap; the message says what to lower.
    """
    beam_name, len_name = names
    questions = f"{batch_size} question{'s' if batch_size != 1 else ''}"
    if beam_size is None:
        what = f"greedy search with {len_name} {max_len} over {questions}"
        advice = f"lower {len_name}, or decode fewer questions at once"
    else:
        what = f"beam search with {beam_name} {beam_size} and {len_name} {max_len} over {questions}"
        advice = f"lower {beam_name} or {len_name}, or decode fewer questions at once"
    check_memory(search_bytes(batch_size, max_len, beam_size), what, advice)


def greedy_search(step: Step, state: Any, batch_size: int, max_len: int) -> np.ndarray:
    """Generates by always taking the most likely next token (the one-to-many generator).

    The whole batch moves together: each step feeds every row's previous
    prediction (BOS at first) with the carried state.  A row that has produced
    EOS keeps being fed (its EOS, then PAD) so that the batch stays whole, but
    what it predicts is ignored and its output is PAD; the loop stops as soon as
    every row has produced EOS.  Ties go to the lowest token id.

    Args:
        step: the backend's one-step decoder, ``step(tokens, state) -> (logits, state)``.
        state: the initial state for B rows, usually the encoder's hand-off (h, c);
            passed through untouched.
        batch_size: B.
        max_len: T, the most tokens to generate per row (EOS included), >= 1.

    Returns:
        int64 (B, T): tokens, EOS, then PAD.

    Raises:
        ValueError: a bad max_len or step output, or a (B, T) too big for memory
            (``check_search_memory``), refused before the first step.
    """
    max_len = check_max_len(max_len)
    check_search_memory(batch_size, max_len)
    tokens = np.full(batch_size, BOS, dtype=np.int64)  # (B,)
    output = np.full((batch_size, max_len), PAD, dtype=np.int64)  # (B, T)
    done = np.zeros(batch_size, dtype=bool)  # (B,)
    for t in range(max_len):
        logits, state = step(tokens, state)
        logits = _blocked(_check_logits(logits, batch_size))  # (B, V)
        tokens = np.where(done, PAD, np.argmax(logits, axis=1)).astype(np.int64)  # (B,)
        output[:, t] = tokens
        done |= tokens == EOS
        if done.all():
            break
    return output


def beam_search(
    step: Step,
    state: Any,
    batch_size: int,
    beam_size: int,
    max_len: int,
    select: Select | None = None,
) -> np.ndarray:
    """Generates by keeping the K most likely partial answers per row instead of one.

    Greedy search can commit to a token that looks best now but leads nowhere
    good; beam search keeps K hypotheses alive.  Each row starts with one
    hypothesis, BOS (the other K-1 places start empty, so K copies of the same
    start do not fill the beam).  Each step:

    1. every live hypothesis is extended by every token, scoring
       score + log p(token), with log p from a float64 log-softmax;
    2. the best extensions of each row survive, one per open place (stable
       sort: ties go to the lower beam, then the lower token id);
    3. survivors that end in EOS are set aside as finished and close their
       place for good, so the beam shrinks; the rest are fed, with their
       parents' state, to the next step.

    A row is done when all K places have closed with a finished hypothesis; the
    search stops when every row is done or T tokens have been generated.  The
    answer is then the best hypothesis, finished or still live, by
    length-normalised score
    ``(sum of log-probs) / (number of tokens generated, EOS included)``.

    Why normalise by length: every token multiplies in a probability below 1,
    so the raw sum only falls as a hypothesis grows, and comparing raw sums
    would favour answers that stop early.  The average log-prob per token
    compares hypotheses of different lengths on an equal footing.  (Within one
    step all candidates have the same length, so step 2 may rank by raw sum.)

    With K = 1 this is exactly greedy_search: the one survivor is the argmax,
    and when it is EOS the row is done.

    Args:
        step: the backend's one-step decoder, ``step(tokens, state) -> (logits, state)``.
        state: the initial state for B rows, usually the hand-off (h, c).
        batch_size: B.
        beam_size: K, hypotheses kept per row, >= 1.
        max_len: T, the most tokens to generate per row (EOS included), >= 1.
        select: ``select(state, index) -> state`` takes entries ``index`` along
            the batch axis; by default ``np.take(s, index, axis=1)`` for each
            array s of a tuple state (the (h, c) pair, each (L, N, H)).

    Returns:
        int64 (B, T): tokens, EOS, then PAD.

    Raises:
        ValueError: a bad beam_size, max_len or step output, or a (B, K, T) history
            too big for memory (``check_search_memory``), refused before the first step.
    """
    max_len = check_max_len(max_len)
    beams = check_beam_size(beam_size)
    check_search_memory(batch_size, max_len, beams)
    select = _take_batch if select is None else select
    slots = np.arange(batch_size * beams).reshape(batch_size, beams)  # (B, K)

    # Row b's hand-off is copied to its K places: flat entry b*K + k is (row b, place k).
    state = select(state, np.repeat(np.arange(batch_size), beams))
    tokens = np.full(batch_size * beams, BOS, dtype=np.int64)  # (B*K,)
    scores = np.full((batch_size, beams), -np.inf)  # (B, K) sum of log-probs; -inf: no hypothesis
    scores[:, 0] = 0.0
    history = np.full((batch_size, beams, max_len), PAD, dtype=np.int64)  # (B, K, T)
    finished: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(batch_size)]

    for t in range(max_len):
        logits, state = step(tokens, state)
        log_probs = _log_softmax(_blocked(_check_logits(logits, batch_size * beams)))  # (B*K, V)
        vocab = log_probs.shape[1]
        # A place with no hypothesis scores -inf, and so does every extension of it.
        extended = scores[:, :, None] + log_probs.reshape(batch_size, beams, vocab)  # (B, K, V)
        extended = extended.reshape(batch_size, beams * vocab)  # (B, K*V)

        new_scores = np.full((batch_size, beams), -np.inf)  # (B, K)
        new_history = np.full_like(history, PAD)  # (B, K, T)
        parents = slots.copy()  # (B, K) flat entry each place continues from
        for row in range(batch_size):
            open_places = beams - len(finished[row])
            if open_places == 0:  # this row is done
                continue
            place = 0
            for flat in _best(extended[row], open_places):
                beam, token = divmod(int(flat), vocab)
                sequence = history[row, beam].copy()  # (T,)
                sequence[t] = token
                if token == EOS:
                    finished[row].append((float(extended[row, flat]) / (t + 1), sequence))
                    continue
                new_scores[row, place] = extended[row, flat]
                new_history[row, place] = sequence
                parents[row, place] = slots[row, beam]
                place += 1
        scores, history = new_scores, new_history
        live = np.isfinite(scores)  # (B, K)
        if t + 1 == max_len or not live.any():
            break
        tokens = np.where(live, history[:, :, t], PAD).reshape(-1)  # (B*K,)
        state = select(state, parents.reshape(-1))

    output = np.empty((batch_size, max_len), dtype=np.int64)  # (B, T)
    for row in range(batch_size):
        # Still-live hypotheses ran to the limit: T tokens, no EOS.
        candidates = finished[row] + [
            (scores[row, k] / max_len, history[row, k]) for k in range(beams) if live[row, k]
        ]
        # max keeps the first of equal scores: the earliest finished wins a tie.
        output[row] = max(candidates, key=lambda candidate: candidate[0])[1]
    return output


def _take_batch(state: tuple[np.ndarray, ...], index: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.take(part, index, axis=1) for part in state)


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, best first, ties to the lower index."""
    if scores.size > k:
        # Partition finds the k-th best value fast; keeping every score that
        # equals it makes the tie-break below independent of partition order.
        threshold = np.partition(scores, scores.size - k)[scores.size - k]
        index = np.flatnonzero(scores >= threshold)
    else:
        index = np.arange(scores.size)
    index = index[np.argsort(-scores[index], kind="stable")][:k]
    return index[np.isfinite(scores[index])]


def _blocked(logits: np.ndarray) -> np.ndarray:
    """The logits with PAD and BOS at -inf: neither can be a token of an answer.

    PAD only fills space after EOS and BOS only starts the decoder's input, so
    a model, trained or not, must never generate them; a generated PAD would
    also be read as a masked step and leave the state unchanged.
    """
    logits = logits.astype(np.float64)  # (N, V)
    logits[:, [PAD, BOS]] = -np.inf
    return logits


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p = x - log(sum(exp(x))) per row, in float64: sums over many steps keep their digits."""
    x = logits.astype(np.float64)  # (N, V)
    shifted = x - x.max(axis=1, keepdims=True)  # (N, V) largest is 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, V)


def _check_logits(logits: Any, rows: int) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != rows:
        raise ValueError(
            f"step must return logits of shape (N, V) with N = {rows}, one row per token "
            f"fed; got shape {logits.shape}"
        )
    # NaN or +inf would make the ranking meaningless; -inf (a banned token) is fine.
    if np.isnan(logits).any() or np.isposinf(logits).any() or np.isneginf(logits).all(axis=1).any():
        raise ValueError(
            "step returned logits with NaN, +inf, or a row of only -inf; cannot rank tokens"
        )
    return logits
