"""The parity ladder for the third engine: onnx_impl against the reference and torch_impl.

The same rungs as test_parity.py, on the same grid (LSTM and GRU, 1-3 layers,
bidirectional or not, E == H, and the four attending models: Luong and Bahdanau,
each with both cells), for the ONNX models our exporter writes and ONNX Runtime
runs: the hand-off of every layer and the memory -> teacher-forced logits and
final state -> attention weights -> greedy tokens -> beam tokens; then the same
against torch_impl, and the hand-off (and memory) crossing engines.  The batch
has an empty source row and length-1 rows; the last test gives the decoder an
all-PAD row.  Random, asymmetric weights (``grid_weights``); float32; one ONNX
Runtime thread.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import BOS, PAD, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close, compare
from shared.decoding.memory import Memory
from shared.layout import random_weights
from tests.support import (
    CELLS,
    GRID,
    assert_attention_weights,
    grid_config,
    grid_id,
    grid_weights,
    model_with,
    reference_beam,
    sample_batch,
)

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module", params=GRID, ids=grid_id)
def case(request):
    """One configuration: its random canonical weights, a batch and the ONNX model."""
    config = grid_config(*request.param)
    weights = grid_weights(config, seed=7)
    src, tgt_in = sample_batch(seed=3)
    return config, weights, src, tgt_in, model_with("onnx_impl", config, weights)


def _real(tgt_in):
    return tgt_in != PAD                                                    # (B, T)


def _assert_states(label, config, state, expected):
    assert len(state) == len(config.state_names), f"{config.cell} state is {config.state_names}"
    for part, value, value_ref in zip(config.state_names, state, expected, strict=True):
        assert value.dtype == np.float32
        for k in range(config.num_layers):
            assert_close(f"{label} {part} layer {k}", value[k], value_ref[k], STATE_ATOL)


def test_handoff_matches_reference_every_layer(case):
    config, weights, src, _, (onnx_impl, model) = case
    state = onnx_impl.encode(model, src)                                    # each (L, B, H_dec)
    assert state[0].shape == (config.num_layers, len(src), config.decoder_hidden_size)
    _assert_states(f"onnx {config.cell} hand-off", config, state,
                   reference.encode(weights, config, src))
    empty = (src == PAD).all(axis=1)
    assert empty.any() and not any(part[:, empty].any() for part in state), \
        "an all-PAD row hands off zeros"


def test_memory_matches_reference_and_is_empty_without_attention(case):
    """The encoder graph's memory: the top layer's outputs, zeros at PAD, and the mask."""
    config, weights, src, _, (onnx_impl, model) = case
    state, memory = onnx_impl.encode(model, src, return_memory=True)
    for value, alone in zip(state, onnx_impl.encode(model, src), strict=True):
        np.testing.assert_array_equal(alone, value, err_msg="onnx encode without memory")
    _, memory_ref = reference.encode(weights, config, src, return_memory=True)
    assert isinstance(memory, Memory)
    assert memory.outputs.dtype == np.float32 and memory.mask.dtype == bool
    np.testing.assert_array_equal(memory.mask, src != PAD, err_msg="onnx memory mask")
    assert_close(f"onnx {config.cell} memory outputs", memory.outputs, memory_ref.outputs,
                 STATE_ATOL)
    assert not memory.outputs[src == PAD].any(), "the memory is zeros at PAD"
    width = config.decoder_hidden_size if config.has_attention else 0
    assert memory.outputs.shape == (*src.shape, width), "no attention: an empty memory"


def test_teacher_forced_logits_and_final_state(case):
    config, weights, src, tgt_in, (onnx_impl, model) = case
    state, memory = reference.encode(weights, config, src, return_memory=True)
    logits, final = onnx_impl.decode(model, tgt_in, tuple(s.astype(np.float32) for s in state),
                                     memory)
    logits_ref, final_ref = reference.decode(weights, config, tgt_in, state, memory)
    assert logits.shape == (len(tgt_in), tgt_in.shape[1], config.tgt_vocab_size)
    assert_close(f"onnx {config.cell} {config.attention} logits", logits, logits_ref,
                 LOGITS_ATOL, mask=_real(tgt_in))
    _assert_states(f"onnx {config.cell} decoder final", config, final, final_ref)
    assert_close(f"onnx {config.cell} forward logits", onnx_impl.forward(model, src, tgt_in),
                 logits_ref, LOGITS_ATOL, mask=_real(tgt_in))


def test_attention_weights_match_reference(case):
    """a (B, T, S): sums to 1 over real source tokens, 0 on PAD, all 0 for an all-PAD source."""
    config, weights, src, tgt_in, (onnx_impl, model) = case
    assert_attention_weights("onnx", onnx_impl, model, weights, config, src, tgt_in)


def test_greedy_tokens_equal_reference(case):
    config, weights, src, _, (onnx_impl, model) = case
    tokens = onnx_impl.greedy_decode(model, src, max_len=9)
    assert tokens.dtype == np.int64 and tokens.shape == (len(src), 9)
    np.testing.assert_array_equal(tokens, reference.greedy_decode(weights, config, src, 9),
                                  err_msg=f"onnx {config.cell} greedy tokens")


def test_beam_tokens_equal_reference_and_beam1_is_greedy(case):
    config, weights, src, _, (onnx_impl, model) = case
    np.testing.assert_array_equal(
        onnx_impl.beam_decode(model, src, beam_size=3, max_len=7),
        reference_beam(weights, config, src, 3, 7), err_msg=f"onnx {config.cell} beam tokens",
    )
    np.testing.assert_array_equal(
        onnx_impl.beam_decode(model, src, beam_size=1, max_len=7),
        onnx_impl.greedy_decode(model, src, max_len=7),
        err_msg="onnx: beam_size=1 must equal greedy",
    )


def test_every_rung_equals_torch_impl_and_the_handoff_crosses(case):
    """Hand-off, logits, greedy and beam tokens as torch_impl's; each decodes the other's state.

    With attention the memory crosses with the hand-off: NumPy arrays either engine reads.
    """
    config, weights, src, tgt_in, (onnx_impl, model) = case
    torch_impl, torch_model = model_with("torch_impl", config, weights)
    cell = config.cell
    onnx_state, onnx_memory = onnx_impl.encode(model, src, return_memory=True)
    torch_state, torch_memory = torch_impl.encode(torch_model, src, return_memory=True)
    _assert_states(f"onnx vs torch {cell} hand-off", config, onnx_state, torch_state)
    assert_close(f"onnx vs torch {cell} memory outputs", onnx_memory.outputs,
                 torch_memory.outputs, STATE_ATOL)
    expected, _ = torch_impl.decode(torch_model, tgt_in, torch_state, torch_memory)
    for label, logits in (
        ("onnx vs torch", onnx_impl.decode(model, tgt_in, onnx_state, onnx_memory)[0]),
        ("torch hand-off -> onnx decoder",
         onnx_impl.decode(model, tgt_in, torch_state, torch_memory)[0]),
        ("onnx hand-off -> torch decoder",
         torch_impl.decode(torch_model, tgt_in, onnx_state, onnx_memory)[0]),
    ):
        assert_close(f"{label} {cell} logits", logits, expected, LOGITS_ATOL, mask=_real(tgt_in))
    if config.has_attention:
        assert_close(f"onnx vs torch {cell} attention weights",
                     onnx_impl.attention_weights(model, src, tgt_in),
                     torch_impl.attention_weights(torch_model, src, tgt_in), STATE_ATOL,
                     mask=_real(tgt_in))
    np.testing.assert_array_equal(onnx_impl.greedy_decode(model, src, 9),
                                  torch_impl.greedy_decode(torch_model, src, 9),
                                  err_msg=f"onnx vs torch {cell} greedy tokens")
    np.testing.assert_array_equal(onnx_impl.beam_decode(model, src, 3, 7),
                                  torch_impl.beam_decode(torch_model, src, 3, 7),
                                  err_msg=f"onnx vs torch {cell} beam tokens")


@pytest.mark.parametrize("cell", CELLS)
def test_an_all_pad_decoder_row_keeps_its_state_as_in_torch_impl(cell):
    """ONNX Runtime ends a length-0 row in zeros; the graph gives the state back, as torch does."""
    config = grid_config(cell, 2, True, 6, 6)
    weights = random_weights(config, seed=5)
    onnx_impl, model = model_with("onnx_impl", config, weights)
    torch_impl, torch_model = model_with("torch_impl", config, weights)
    rng = np.random.default_rng(2)
    state = tuple(rng.uniform(-1, 1, (2, 3, 12)).astype(np.float32)
                  for _ in config.state_names)                              # each (L, B, H_dec)
    tgt_in = np.array([[BOS, 5, 6], [0, 0, 0], [BOS, 0, 0]])                # lengths 3, 0, 1
    logits, final = onnx_impl.decode(model, tgt_in, state)
    torch_logits, torch_final = torch_impl.decode(torch_model, tgt_in, state)
    for part, value, given, torch_value in zip(config.state_names, final, state, torch_final,
                                               strict=True):
        np.testing.assert_array_equal(value[:, 1], given[:, 1],
                                      err_msg=f"onnx {cell} {part}: the empty row's state")
        assert_close(f"onnx vs torch {cell} final {part}", value, torch_value, STATE_ATOL)
    assert_close(f"onnx vs torch {cell} logits", logits, torch_logits, LOGITS_ATOL,
                 mask=_real(tgt_in))


# ---- mutations of the attending decoder graph: each is a mistake the ladder must see ----

def _unmasked(graph):
    """The Softmax reads the raw scores: PAD source positions take weight."""
    _node(graph, "decoder.attention.softmax").input[0] = "decoder.attention.scores"


def _context_last(graph):
    """[h_t; c_t] instead of [c_t; h_t]: W_c's halves multiply the wrong vectors."""
    joined = _node(graph, "decoder.attention.joined")
    joined.input[:] = list(joined.input)[::-1]


def _empty_rows_attend(graph):
    """The all-PAD rule dropped: a source row with no real token spreads weight over its PADs."""
    rule = _node(graph, "decoder.attention")
    rule.input[1] = rule.input[2]  # Where(empty, a, a): a, even where it should be 0


def _node(graph, name):
    return next(node for node in graph.node if node.name == name)


GRAPH_MUTATIONS = {  # the edit, and the rung that must see it
    "unmasked": (_unmasked, "attention weights"),
    "context-last": (_context_last, "logits"),  # the weights stay right: h_t does not change
    # The logits stay right: the memory is zeros at PAD, so the context is 0 either way;
    # only the weights show that the rule of shared.layout.attention is broken.
    "empty-rows-attend": (_empty_rows_attend, "attention weights"),
}


@pytest.mark.parametrize("mutation", list(GRAPH_MUTATIONS))
@pytest.mark.parametrize("kind", ["luong", "bahdanau"])
def test_a_broken_attention_graph_is_caught_by_the_ladder(kind, mutation):
    """Each edit of the decoder graph, run by ONNX Runtime, moves its rung past the tolerance
    against the reference: the rungs see what they claim to."""
    import onnx_impl
    from onnx_impl.model import Seq2Seq
    from shared.onnx.export import build_models

    config = grid_config("lstm", 1, True, 6, 6, kind)
    weights = grid_weights(config, seed=7)
    src, tgt_in = sample_batch(seed=3)
    models = build_models(weights, config)
    edit, rung = GRAPH_MUTATIONS[mutation]
    edit(models["decoder"].graph)
    model = Seq2Seq(config, {part: m.SerializeToString() for part, m in models.items()})
    real = _real(tgt_in)
    found = {
        "attention weights": compare(
            "attention weights", onnx_impl.attention_weights(model, src, tgt_in),
            reference.attention_weights(weights, config, src, tgt_in), STATE_ATOL, mask=real),
        "logits": compare("logits", onnx_impl.forward(model, src, tgt_in),
                          reference.forward(weights, config, src, tgt_in), LOGITS_ATOL,
                          mask=real),
    }
    assert not found[rung].ok, f"{kind} {mutation} went unnoticed: {found[rung]}"
