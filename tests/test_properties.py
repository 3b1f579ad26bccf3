"""Property tests: for ANY small configuration and ragged batch, every engine equals the reference.

The parity grid (tests/support.py) fixes twelve models; here Hypothesis draws the
model (LSTM or GRU, 1 to 3 layers, one or two directions, E equal to H, to D*H
or neither, small vocabularies), the weights and a batch whose rows may be empty
or one token long and may carry extra PAD columns.  For each draw, every engine
must give the reference's hand-off within STATE_ATOL, its teacher-forced
logits within LOGITS_ATOL at real positions, its final decoder state, and its
greedy tokens exactly.

Each draw builds a Keras model and traces its graphs, the slow part, so the
draws are few (and the on-device engines, whose every model is an export, climb the
grid in test_ladder_3_model.py instead); ``derandomize`` makes them the same on every run, so that a
failure is repeatable, and Hypothesis shrinks a failing draw to a small one.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared import BOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.layout import random_weights
from shared.text.data import random_ids
from tests.support import BUILDERS, model_with

MAX_LEN = 5  # greedy tokens compared per row


@st.composite
def cases(draw) -> dict:
    """A configuration, a weight seed and scale, and the lengths of a ragged batch."""
    bidirectional = draw(st.booleans())
    hidden = draw(st.integers(1, 5))
    width = (2 if bidirectional else 1) * hidden  # D*H: what layers above the first read
    batch = draw(st.integers(1, 4))
    lengths = st.lists(st.integers(0, 6), min_size=batch, max_size=batch)
    return {
        "cell": draw(st.sampled_from(["lstm", "gru"])),
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": bidirectional,
        "hidden_size": hidden,
        "embedding_dim": draw(st.one_of(st.just(hidden), st.just(width), st.integers(1, 6))),
        "src_vocab_size": draw(st.integers(4, 9)),
        "tgt_vocab_size": draw(st.integers(4, 9)),
        "src_lengths": draw(lengths),
        "tgt_lengths": draw(lengths),
        "extra_columns": draw(st.integers(0, 2)),  # PAD columns past the longest row
        "scale": draw(st.sampled_from([0.3, 1.0])),
        "seed": draw(st.integers(0, 2**16)),
    }


def _batch(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """(src (B, S), tgt_in (B, T)), post-padded; tgt_in rows start with BOS unless empty."""
    rng = np.random.default_rng(case["seed"])
    src = random_ids(rng, case["src_lengths"], case["src_vocab_size"])  # (B, S)
    tgt_in = random_ids(rng, case["tgt_lengths"], case["tgt_vocab_size"], first=BOS)  # (B, T)
    pad = ((0, 0), (0, case["extra_columns"]))
    return np.pad(src, pad, constant_values=PAD), np.pad(tgt_in, pad, constant_values=PAD)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@example(  # the corners at once: 3 layers, two directions, E == H, empty and 1-token rows
    {"cell": "lstm", "num_layers": 3, "bidirectional": True, "hidden_size": 3, "embedding_dim": 3,
     "src_vocab_size": 7, "tgt_vocab_size": 6, "src_lengths": [0, 1, 6],
     "tgt_lengths": [1, 0, 5], "extra_columns": 1, "scale": 1.0, "seed": 4}
)
@given(cases())
def test_every_engine_equals_the_reference(case):
    config = Seq2SeqConfig(
        case["src_vocab_size"], case["tgt_vocab_size"], case["embedding_dim"],
        case["hidden_size"], case["num_layers"], case["bidirectional"], cell=case["cell"],
    )
    weights = random_weights(config, seed=case["seed"], scale=case["scale"])
    src, tgt_in = _batch(case)
    handoff_ref = reference.encode(weights, config, src)  # each (L, B, H_dec), float64
    handoff = tuple(part.astype(np.float32) for part in handoff_ref)
    logits_ref, final_ref = reference.decode(weights, config, tgt_in, handoff)
    greedy_ref = reference.greedy_decode(weights, config, src, MAX_LEN)  # (B, MAX_LEN)
    real = tgt_in != PAD  # (B, T): logits at PAD positions are unspecified
    for name in BUILDERS:
        module, model = model_with(name, config, weights)
        what = f"{name} {config.cell}"
        state = module.encode(model, src)  # each (L, B, H_dec)
        for part, value, expected in zip(config.state_names, state, handoff_ref, strict=True):
            assert_close(f"{what} hand-off {part}", value, expected, STATE_ATOL)
        logits, final = module.decode(model, tgt_in, handoff)  # (B, T, V_tgt)
        assert_close(f"{what} logits", logits, logits_ref, LOGITS_ATOL, mask=real)
        for part, value, expected in zip(config.state_names, final, final_ref, strict=True):
            assert_close(f"{what} decoder final {part}", value, expected, STATE_ATOL)
        np.testing.assert_array_equal(
            module.greedy_decode(model, src, MAX_LEN), greedy_ref, err_msg=f"{name} greedy tokens"
        )
