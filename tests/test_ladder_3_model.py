"""Rung 3 of the ladder, the whole model: every engine against the float64 reference.

Rungs 1 and 2, one cell step and one layer, are test_ladder_1_cell.py and
test_ladder_2_layer.py; rung 4, weights and states crossing engines, is
test_ladder_4_crossing.py.  Here every engine (keras_impl on the current Keras backend,
torch_impl, onnx_impl; litert_impl and executorch_impl, on the programs exported from
keras_impl and torch_impl, on the grid models of ``support.ON_DEVICE_GRID``) climbs the
parity ladder (``shared.ladder``) on every grid model (tests/support.py: both cells,
1-3 layers, uni- and bidirectional, E == H and not, and four attending models):

    hand-off of every layer -> memory -> teacher-forced logits and the decoder's final
    state (from the reference's hand-off and memory) -> attention weights -> greedy
    tokens -> beam tokens

Each test is one rung for one engine and one model; a failure names the engine, the
grid model, the rung, the tensor and the largest difference.  Beside each comparison,
what a comparison cannot show: dtypes and shapes, zeros for an all-PAD source row,
attention weights that sum to 1.  Random, asymmetric weights; a batch of mixed
lengths with an empty source row; float32; dropout off.

Runs on the current Keras backend; ``KERAS_BACKEND=jax`` (or ``torch``) runs keras_impl's
cases on that backend, the other engines' having run on TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import PAD
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.decoding.memory import Memory
from tests.support import ENGINES_HERE, GRID_HERE, climb_rungs, grid_case, grid_id, grid_model

pytestmark = pytest.mark.every_keras_backend

MAX_LEN = 9  # the reference's greedy and beam length (support.grid_case)


@pytest.fixture(scope="module", params=GRID_HERE, ids=grid_id)
def case(request):
    return grid_case(request.param)


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_handoff_matches_reference_every_layer(case, engine):
    config, src = case.config, case.src
    module, model = grid_model(engine, case.params)
    handoff = climb_rungs(engine, case, ["hand-off"])["hand-off"]         # each (L, B, H_dec)
    assert tuple(handoff) == config.state_names, f"{config.cell} hands off {config.state_names}"
    empty = (src == PAD).all(axis=1)                                        # (B,)
    for part, alone in zip(config.state_names, module.encode(model, src), strict=True):
        value = handoff[part]
        assert value.shape == (config.num_layers, len(src), config.decoder_hidden_size)
        assert value.dtype == np.float32
        np.testing.assert_array_equal(alone, value, err_msg=f"{engine} encode without memory")
        assert empty.any() and not value[:, empty].any(), "an all-PAD row hands off zeros"


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_memory_matches_reference_and_is_empty_without_attention(case, engine):
    """The memory attention reads: the top layer's outputs, zeros at PAD, and the mask."""
    config, src = case.config, case.src
    module, model = grid_model(engine, case.params)
    _, memory = module.encode(model, src, return_memory=True)
    assert isinstance(memory, Memory)
    assert memory.outputs.dtype == np.float32 and memory.mask.dtype == bool
    np.testing.assert_array_equal(memory.mask, src != PAD, err_msg=f"{engine} memory mask")
    width = config.decoder_hidden_size if config.has_attention else 0
    assert memory.outputs.shape == (*src.shape, width), "no attention: an empty memory"
    assert not memory.outputs[src == PAD].any(), "the memory is zeros at PAD"
    if config.has_attention:
        climb_rungs(engine, case, ["memory"])


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_teacher_forced_logits_and_final_state(case, engine):
    """decode from the reference's hand-off and memory, then forward from the engine's own."""
    config, src, tgt_in = case.config, case.src, case.tgt_in
    module, model = grid_model(engine, case.params)
    got = climb_rungs(engine, case, ["logits", "final state"])
    assert got["logits"]["logits"].shape == (*tgt_in.shape, config.tgt_vocab_size)
    assert_close(f"{engine} {case.id} forward logits", module.forward(model, src, tgt_in),
                 case.reference.outputs["logits"]["logits"], LOGITS_ATOL, mask=tgt_in != PAD)


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_attention_weights_match_reference(case, engine):
    """a (B, T, S): sums to 1 over real source tokens, 0 on PAD, all 0 for an all-PAD source;
    a model without attention refuses to give weights."""
    config, src, tgt_in = case.config, case.src, case.tgt_in
    module, model = grid_model(engine, case.params)
    if not config.has_attention:
        with pytest.raises(ValueError, match=r"this model has no attention"):
            module.attention_weights(model, src, tgt_in)
        return
    a = climb_rungs(engine, case, ["attention"])["attention"]["weights"]    # (B, T, S)
    assert a.shape == (len(src), tgt_in.shape[1], src.shape[1]) and a.dtype == np.float32
    assert np.isfinite(a).all(), f"{engine}: NaN or inf in the attention weights"
    real = tgt_in != PAD                                                    # (B, T)
    has_source = (src != PAD).any(axis=1)                                   # (B,)
    sums = a.sum(axis=2)[real & has_source[:, None]]
    assert_close(f"{engine} {case.id} attention row sums", sums, np.ones_like(sums), STATE_ATOL)
    pad_source = np.broadcast_to((src == PAD)[:, None, :], a.shape)         # (B, T, S)
    assert not a[pad_source].any(), f"{engine}: a PAD source position received attention"
    assert not has_source.all() and not a[~has_source].any(), "an all-PAD source: weights 0"


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_greedy_tokens_equal_reference(case, engine):
    tokens = climb_rungs(engine, case, ["greedy"])["greedy"]["tokens"]
    assert tokens.dtype == np.int64 and tokens.shape == (len(case.src), MAX_LEN)


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_beam_tokens_equal_reference_and_beam1_is_greedy(case, engine):
    module, model = grid_model(engine, case.params)
    beam = climb_rungs(engine, case, ["beam"])["beam"]["tokens"]
    assert beam.dtype == np.int64 and beam.shape == (len(case.src), MAX_LEN)
    np.testing.assert_array_equal(
        module.beam_decode(model, case.src, beam_size=1, max_len=MAX_LEN),
        module.greedy_decode(model, case.src, max_len=MAX_LEN),
        err_msg=f"{engine}: beam_size=1 must equal greedy",
    )
