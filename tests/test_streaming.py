"""Streaming encode: a long source read chunk by chunk, carrying the state, equals reading it whole.

``encode(model, chunk, initial_state=state)`` starts each layer of a unidirectional
encoder from ``state`` (the last chunk's hand-off), on every engine (keras_impl,
torch_impl, onnx_impl, litert_impl, executorch_impl) and the reference.  For a source
of 12 positions whose rows end in the first, second and third chunk, at a chunk's
edge, never start, or have one token, read in chunks of 4, 5 and 1:

    the last chunk's hand-off == the whole source's hand-off (and the reference's)
    the chunks' memories, concatenated along S == the whole source's memory
    a row with no real token in a chunk keeps the state it was given, exactly

A bidirectional encoder reads from the end too and refuses a state, in the same words
everywhere.  The two silent traps on the way, each shown to be one: PyTorch's packing
runs one PAD step for a row of length 0 (it refuses 0), and ONNX Runtime gives Y_h = 0,
not the initial state, for a row of length 0.  docs/examples/13_streaming_state.py shows
Keras's ``stateful=True`` and PyTorch carrying (h, c) computing the same.

Shapes: B batch, S source length, L layers, H hidden, H_dec decoder hidden.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import PAD
from shared.core.compare import STATE_ATOL, assert_close, max_abs_diff
from shared.ladder.rungs import NUMPY_REFERENCE, ReferenceModel
from shared.text.data import random_ids
from tests.refusal import same_refusal
from tests.support import ENGINES, V_SRC, grid_case, grid_id, grid_model

# Two grid models whose encoders stream: an LSTM (h and c) with attention, every engine's
# (support.ON_DEVICE_GRID), and a two-layer GRU, the builders' (the on-device engines'
# rows of it are left out: tests/conftest.py).
STREAMED = [("lstm", 1, False, 6, 6, "bahdanau"), ("gru", 2, False, 4, 6, "none")]
BIDIRECTIONAL = ("gru", 1, True, 5, 7, "none")
LENGTHS = [12, 9, 4, 0, 1]  # ends in chunk 3, 3 and 1 (at its edge, for 4), never starts, 1


def long_source(seed: int = 3) -> np.ndarray:
    """int64 (5, 12): rows of the lengths above, post-padded."""
    return random_ids(np.random.default_rng(seed), LENGTHS, V_SRC)


def engine(name: str, params: tuple):
    """(module, model) of an engine, or the reference behind the same API."""
    if name == "reference":
        case = grid_case(params)
        return NUMPY_REFERENCE, ReferenceModel(case.weights, case.config)
    return grid_model(name, params)


def chunked(module, model, src: np.ndarray, size: int):
    """The source read ``size`` positions at a time: (the last hand-off, memories joined)."""
    state, outputs = None, []
    for start in range(0, src.shape[1], size):
        state, memory = module.encode(model, src[:, start : start + size], return_memory=True,
                                      initial_state=state)
        outputs.append(memory.outputs)
    return state, np.concatenate(outputs, axis=1)


@pytest.fixture(params=STREAMED, ids=grid_id)
def case(request):
    return grid_case(request.param)


@pytest.mark.parametrize("size", [4, 5, 1])
@pytest.mark.parametrize("name", [*ENGINES, "reference"])
def test_a_source_read_in_chunks_ends_where_the_whole_source_does(case, name, size):
    module, model = engine(name, case.params)
    src = long_source()
    whole_state, whole_memory = NUMPY_REFERENCE.encode(ReferenceModel(case.weights, case.config),
                                                       src, return_memory=True)
    state, outputs = chunked(module, model, src, size)
    alone, memory = module.encode(model, src, return_memory=True)  # the whole, at once
    for j, part in enumerate(case.config.state_names):
        where = f"{name} {case.id} chunks of {size}: hand-off {part}"
        assert_close(where, state[j], whole_state[j], STATE_ATOL)
        assert_close(f"{where} against the engine's own whole", state[j], alone[j], STATE_ATOL)
    if case.config.has_attention:
        assert_close(f"{name} {case.id} chunks of {size}: memory", outputs, whole_memory.outputs,
                     STATE_ATOL)
        assert_close(f"{name} {case.id}: the whole memory", memory.outputs, whole_memory.outputs,
                     STATE_ATOL)
    empty = (src == PAD).all(axis=1)                                        # (B,): row 3
    assert empty.any() and not state[0][:, empty].any(), "a row that never starts: zeros"


@pytest.mark.parametrize("name", [*ENGINES, "reference"])
def test_a_chunk_with_no_real_token_keeps_the_state_it_was_given(case, name):
    """Exactly: the state is passed through, not recomputed (packing's PAD step, ONNX
    Runtime's zeros at length 0 would move it)."""
    module, model = engine(name, case.params)
    rng = np.random.default_rng(4)
    L, H = case.config.num_layers, case.config.decoder_hidden_size
    given = tuple(rng.uniform(-1, 1, (L, 3, H)).astype(np.float32)
                  for _ in case.config.state_names)                         # each (L, B, H_dec)
    src = np.array([[5, 6, 0], [0, 0, 0], [7, 0, 0]])                       # row 1: no token
    state = module.encode(model, src, initial_state=given)
    for part, value, start in zip(case.config.state_names, state, given, strict=True):
        np.testing.assert_array_equal(value[:, 1], start[:, 1], err_msg=f"{name} {part}")
        assert max_abs_diff(value[:, 0], start[:, 0])[0] > 0, f"{name}: row 0 took no step"


def test_a_bidirectional_encoder_refuses_to_stream_alike():
    models = {name: grid_model(name, BIDIRECTIONAL) for name in ENGINES}
    state = (np.zeros((1, 2, 14), np.float32),)                             # (L, B, H_dec)
    message = same_refusal(models, lambda module, model: module.encode(
        model, np.array([[5, 6], [7, 0]]), initial_state=state), holds="initial_state")
    assert "this encoder is bidirectional" in message and "cannot stream" in message


# ---- the two silent traps, each shown to be one ----

def test_packing_runs_a_pad_step_for_an_empty_row_which_torch_impl_undoes():
    torch = pytest.importorskip("torch")
    from torch_impl.model import run_packed

    case = grid_case(STREAMED[0])
    module, model = grid_model("torch_impl", case.params)
    src = long_source()[:, 4:8]                                             # row 2, 3: no token
    given, _ = chunked(module, model, long_source()[:, :4], 4)
    with torch.no_grad():
        x = model.encoder_embedding(torch.from_numpy(src))
        lengths = (torch.from_numpy(src) != PAD).sum(dim=1)
        _, packed = run_packed(model.encoder_rnn, x, lengths, tuple(map(torch.from_numpy, given)))
    kept = module.encode(model, src, initial_state=given)
    empty = (src == PAD).all(axis=1)
    moved = max_abs_diff(packed[0].numpy()[:, empty], given[0][:, empty])[0]
    assert moved > 100 * STATE_ATOL, f"packing's PAD step moved h by only {moved}"
    np.testing.assert_array_equal(kept[0][:, empty], given[0][:, empty])


def test_onnx_runtime_gives_zeros_at_length_0_which_the_streaming_graph_undoes():
    pytest.importorskip("onnxruntime")
    import onnx
    import onnxruntime as ort

    from onnx_impl.model import Seq2Seq
    from shared.onnx.export import streaming_encoder

    case = grid_case(STREAMED[0])
    module, model = grid_model("onnx_impl", case.params)
    graph = onnx.load_model_from_string(streaming_encoder(case.weights, case.config))
    for node in graph.graph.node:  # the trap: the Where that gives an empty row its state
        if node.op_type == "Where" and node.output[0].endswith("_out"):
            node.op_type, node.input[:] = "Identity", [node.input[2]]
    naive = Seq2Seq(case.config, model.models)
    naive.streaming_encoder = ort.InferenceSession(graph.SerializeToString(),
                                                   providers=["CPUExecutionProvider"])
    src = long_source()
    given, _ = chunked(module, model, src[:, :4], 4)
    empty = (src[:, 4:8] == PAD).all(axis=1)
    wrong = naive.encode(src[:, 4:8], initial_state=given)
    assert not wrong[0][:, empty].any(), "ONNX Runtime's Y_h for a row of length 0 is 0"
    assert max_abs_diff(wrong[0][:, empty], given[0][:, empty])[0] > 100 * STATE_ATOL
    right = module.encode(model, src[:, 4:8], initial_state=given)
    np.testing.assert_array_equal(right[0][:, empty], given[0][:, empty])
