"""The bad-input matrix for onnx_impl: the same refusals, word for word, as torch_impl.

test_bad_inputs.py holds the matrix (bad ids, states, counts, weights) and checks
that Keras and PyTorch refuse each entry alike; here every entry goes to
onnx_impl and torch_impl, and the exception type and message must be the same.
The odd-but-valid inputs (empty rows, no columns, an integer state) must give
the reference's answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import PAD, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.layout import random_weights
from tests.support import model_with
from tests.test_bad_inputs import (
    BAD_COUNTS,
    BAD_GRU_STATES,
    BAD_IDS,
    BAD_STATES,
    BAD_WEIGHTS,
    CONFIG,
    GRU_CONFIG,
    H_DEC,
    SOURCE_READERS,
    SRC,
    TGT_IN,
    V_TGT,
    L,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


def _pair(config):
    weights = random_weights(config, seed=2)
    return model_with("onnx_impl", config, weights), model_with("torch_impl", config, weights)


@pytest.fixture(scope="module")
def models():
    """((onnx_impl, model), (torch_impl, model)) holding the same LSTM weights."""
    return _pair(CONFIG)


@pytest.fixture(scope="module")
def gru_models():
    return _pair(GRU_CONFIG)


def _refusal(call) -> tuple[type, str]:
    try:
        result = call()
    except Exception as err:  # any type: compared below
        return type(err), str(err)
    raise AssertionError(f"the bad input was accepted and gave {type(result).__name__}")


def _same_refusal(pair, call, detail: str) -> None:
    (onnx_found, torch_found) = (_refusal(lambda m=m: call(*m)) for m in pair)
    assert onnx_found == torch_found, f"onnx: {onnx_found}\ntorch: {torch_found}"
    assert detail in onnx_found[1], onnx_found[1]


def _bad_calls():
    """(case id, call(module, model), detail, which models) for every matrix entry."""
    for bad, (src, detail) in BAD_IDS.items():
        for reader, read in SOURCE_READERS.items():
            yield f"src-{bad}-{reader}", (lambda m, x, s=src, r=read: r(m, x, s)), detail, "lstm"
    one_row = tuple(np.zeros((L, 1, H_DEC), np.float32) for _ in CONFIG.state_names)
    for bad, (tgt_in, detail) in BAD_IDS.items():  # the same bad ids as decoder input
        if bad == "id-out-of-range":
            tgt_in, detail = np.array([[1, V_TGT]]), f"id {V_TGT} at row 0, position 1"
        yield (f"tgt_in-{bad}", lambda m, x, t=tgt_in: m.decode(x, t, one_row), detail, "lstm")
        yield (f"tgt_in-{bad}-forward", lambda m, x, t=tgt_in: m.forward(x, SRC[:1], t), detail,
               "lstm")
    for bad, (state, detail) in BAD_STATES.items():
        yield f"state-{bad}", (lambda m, x, s=state: m.decode(x, TGT_IN, s)), detail, "lstm"
    for bad, (state, detail) in BAD_GRU_STATES.items():
        yield f"gru-state-{bad}", (lambda m, x, s=state: m.decode(x, TGT_IN, s)), detail, "gru"
    for bad, value in BAD_COUNTS.items():
        yield (f"max_len-{bad}", lambda m, x, v=value: m.greedy_decode(x, SRC, v),
               "max_len must be an integer >= 1; got", "lstm")
        yield (f"beam_size-{bad}", lambda m, x, v=value: m.beam_decode(x, SRC, v, 4),
               "beam_size must be an integer >= 1; got", "lstm")
    for bad, (edit, _, detail) in BAD_WEIGHTS.items():
        yield (f"weights-{bad}", lambda m, x, e=edit: m.import_weights(
            x, e(dict(random_weights(CONFIG, seed=9)))), detail, "lstm")
    yield ("config-dict", lambda m, x: m.build_model(CONFIG.to_dict()),
           "config must be a shared.Seq2SeqConfig; got dict", "lstm")


BAD_CALLS = {case: (call, detail, cell) for case, call, detail, cell in _bad_calls()}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_onnx_impl_refuses_what_torch_impl_refuses_in_the_same_words(models, gru_models, case):
    call, detail, cell = BAD_CALLS[case]
    _same_refusal(models if cell == "lstm" else gru_models, call, detail)


def test_a_refused_import_leaves_the_sessions_as_they_were(models):
    (onnx_impl, model), _ = models
    before = onnx_impl.forward(model, SRC, TGT_IN)
    with pytest.raises(ValueError):
        onnx_impl.import_weights(model, {"decoder.output.b": np.zeros(V_TGT)})
    np.testing.assert_array_equal(onnx_impl.forward(model, SRC, TGT_IN), before)


def test_odd_but_valid_inputs_get_the_reference_answer(models):
    (onnx_impl, model), _ = models
    weights = random_weights(CONFIG, seed=2)
    src = np.array([[5, 6, 7], [0, 0, 0]])                                 # an all-PAD row
    tgt_in = np.array([[1, 5, 6], [0, 0, 0]])                              # one takes no step
    state = (np.ones((L, 2, H_DEC), np.int64), np.zeros((L, 2, H_DEC), np.int64))
    for part, value, expected in zip("hc", onnx_impl.encode(model, src),
                                     reference.encode(weights, CONFIG, src), strict=True):
        assert_close(f"onnx hand-off {part}", value, expected, STATE_ATOL)
        assert not value[:, 1].any()
    for part, value in zip("hc", onnx_impl.encode(model, np.zeros((2, 0), np.int64)),
                           strict=True):
        np.testing.assert_array_equal(value, np.zeros((L, 2, H_DEC)), err_msg=f"onnx {part}")
    logits, end = onnx_impl.decode(model, tgt_in, state)
    logits_ref, end_ref = reference.decode(weights, CONFIG, tgt_in, state)
    assert_close("onnx logits", logits, logits_ref, LOGITS_ATOL, mask=tgt_in != PAD)
    for part, value, expected in zip("hc", end, end_ref, strict=True):
        assert_close(f"onnx final {part}", value, expected, STATE_ATOL)
    logits, end = onnx_impl.decode(model, np.zeros((2, 0), np.int64), state)
    assert logits.shape == (2, 0, V_TGT) and logits.dtype == np.float32
    for part, value, given in zip("hc", end, state, strict=True):
        np.testing.assert_array_equal(value, given, err_msg=f"onnx {part} with no step")
