"""Rung 4 of the ladder: weights, states and files crossing engines.

Weights cross engines only through the canonical layout, so every engine must give
back what it was given, and one engine's weights, hand-off and memory must run in
every other as in the reference.  Over the grid (tests/support.py), for every engine
(keras_impl on the current Keras backend, torch_impl, onnx_impl, and the on-device
engines on the grid models they export) and every pair:

    export_weights(import_weights(w)) == w (a Keras or ONNX LSTM sums its two biases)
    A -> canonical -> B -> canonical -> A, each climbing the ladder on what it got
    every rung of A against every rung of B (the table ``compare`` prints)
    A's hand-off and memory decoded by B: the reference's logits and final state
    a checkpoint written by A and read by B
    an all-PAD decoder row keeps the state it was given, in every engine
    edits of the ONNX attention graph, each caught by the rung it breaks

The on-device engines (litert_impl, executorch_impl) run exported programs: they hold
no weights to import or export, so the rungs on weights and checkpoints are the
builders' (``support.BUILDERS``); every rung of their outputs crosses every engine.

Each crossing climbs the parity ladder (``shared.ladder``); a failure names the
engines, the grid model, the rung, the tensor and the largest difference.  On another
Keras backend only the cases with keras_impl in them run.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from shared import BOS, Tokenizer, load_checkpoint, save_checkpoint
from shared.core.compare import assert_close
from shared.decoding.memory import Memory
from shared.ladder import Reference, climb, engine_name, engine_outputs, parity_report
from shared.ladder.rungs import NUMPY_REFERENCE, Inputs, ReferenceModel
from shared.layout import random_weights
from tests.support import (
    BOTH_WAYS,
    BUILDERS,
    BUILDERS_HERE,
    CELLS,
    GRID_HERE,
    ON_TENSORFLOW,
    PAIRS,
    assert_rungs,
    backend,
    climb_rungs,
    crossed,
    expected_export,
    grid_case,
    grid_id,
    grid_model,
    holding,
)

pytestmark = pytest.mark.every_keras_backend

ON_TENSORFLOW_ONLY = pytest.mark.skipif(
    not ON_TENSORFLOW, reason="no keras_impl in it: it ran in the main process, on TensorFlow")


@pytest.fixture(scope="module", params=GRID_HERE, ids=grid_id)
def case(request):
    return grid_case(request.param)


@pytest.mark.parametrize("engine", BUILDERS_HERE)
def test_export_of_import_gives_the_weights_back(case, engine):
    module, model = grid_model(engine, case.params)
    exported = module.export_weights(model)
    assert list(exported) == list(case.weights), "canonical names and order"
    for key, value in expected_export(engine, case.weights, case.config).items():
        assert_close(f"{engine} {case.id} export {key}", exported[key], value, 1e-7)


@pytest.mark.parametrize(("first", "second"), [pair for pair in BOTH_WAYS
                                               if set(pair) <= set(BUILDERS)])
def test_weights_cross_the_canonical_layout_and_back(case, first, second):
    """first -> canonical -> second -> canonical -> first, each climbing the ladder's
    encoder and decoder rungs on the weights it was given.

    Each model is the case's own, first given other weights (seed 99), so that a weight
    an import missed would show; reusing them spares a Keras retrace.  Their own weights
    are put back afterwards.
    """
    scrambled = random_weights(case.config, seed=99)
    rungs = ["hand-off", "memory", "logits"]
    with holding(first, case) as (a, model_a), holding(second, case) as (b, model_b):
        b.import_weights(model_b, scrambled)
        b.import_weights(model_b, a.export_weights(model_a))
        climb_rungs(second, case, rungs, label=f"{first} -> {second}")
        a.import_weights(model_a, scrambled)
        a.import_weights(model_a, b.export_weights(model_b))
        climb_rungs(first, case, rungs, label=f"{first} -> {second} -> {first}")


@functools.cache
def _every_rung(engine: str, params: tuple):
    module, model = grid_model(engine, params)
    return engine_name(module), engine_outputs(module, model, grid_case(params).reference.inputs)


@pytest.mark.parametrize(("first", "second"), BOTH_WAYS)
def test_every_rung_agrees_between_engines(case, first, second):
    """The two engines against each other on every rung, as ``compare`` reports them."""
    report = parity_report(dict([_every_rung(first, case.params),
                                 _every_rung(second, case.params)]), case.reference)
    pair = [row for row in report.rows if " vs " in row.engine]
    assert {row.rung for row in pair} == set(case.reference.outputs)
    assert_rungs(report.rows, case.id)


@pytest.mark.parametrize(("encoder", "decoder"), PAIRS)
def test_the_handoff_and_memory_cross_engines(case, encoder, decoder):
    """The seed question as a test: the whole state (h and c, or a GRU's h) handed across,
    and with attention the memory too (NumPy arrays, read by any engine)."""
    module, model = grid_model(encoder, case.params)
    handoff, memory = module.encode(model, case.src, return_memory=True)    # (h, c), Memory
    assert isinstance(memory, Memory)
    climb_rungs(decoder, case, ["logits", "final state"], crossed(case, handoff, memory),
                label=f"{encoder} hand-off -> {decoder} decoder")


# Two layers, both directions: each cell, and each attention kind (with one cell each).
CHECKPOINTED = [("lstm", 2, True, 6, 6, "none"), ("gru", 2, True, 6, 6, "none"),
                ("lstm", 2, True, 6, 6, "luong"), ("gru", 2, True, 7, 5, "bahdanau")]


# Checkpoints hold canonical weights, framework-free: one engine writing and another
# reading is checked on TensorFlow; what a Keras backend adds, export_weights and
# import_weights, has its own rungs above.
@pytest.mark.skipif(not ON_TENSORFLOW, reason="checkpoint crossing is checked on TensorFlow")
@pytest.mark.parametrize("params", CHECKPOINTED, ids=grid_id)
@pytest.mark.parametrize(("writer", "reader"), [pair for pair in PAIRS
                                               if set(pair) <= set(BUILDERS)])
def test_a_checkpoint_saved_from_one_backend_runs_in_another(tmp_path, params, writer, reader):
    case = grid_case(params)
    module, model = grid_model(writer, params)
    config = case.config
    tokens = [chr(ord("a") + i) for i in range(config.src_vocab_size - 4)]
    src_tok = Tokenizer(("<pad>", "<bos>", "<eos>", "<unk>", *tokens), "char")
    tgt_tok = Tokenizer(src_tok.tokens[: config.tgt_vocab_size], "char")
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, module.export_weights(model), config, src_tok, tgt_tok)
    loaded = load_checkpoint(path)
    assert loaded.config == config
    with holding(reader, case) as (other, other_model):
        other.import_weights(other_model, random_weights(config, seed=99))
        other.import_weights(other_model, loaded.weights)
        climb_rungs(reader, case, ["hand-off", "logits"],
                    label=f"{writer} checkpoint -> {reader}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("engine", BUILDERS_HERE)
def test_an_all_pad_decoder_row_keeps_its_state(engine, cell):
    """A length-0 decoder row ends in the state it was given, in every engine as in the
    reference (ONNX Runtime's own recurrence would end it in zeros; its graph gives the
    state back)."""
    case = grid_case((cell, 2, True, 6, 6, "none"))
    rng = np.random.default_rng(2)
    state = tuple(rng.uniform(-1, 1, (2, 3, 12)) for _ in case.config.state_names)  # (L, B, H_dec)
    tgt_in = np.array([[BOS, 5, 6], [0, 0, 0], [BOS, 0, 0]])                # lengths 3, 0, 1
    inputs = Inputs(None, tgt_in, state, None, max_len=1)
    rungs = ["logits", "final state"]
    reference = Reference(case.config, inputs, engine_outputs(
        NUMPY_REFERENCE, ReferenceModel(case.weights, case.config), inputs, rungs))
    final = climb_rungs(engine, case, rungs, reference)["final state"]
    for part, given in zip(case.config.state_names, state, strict=True):
        np.testing.assert_array_equal(final[part][:, 1], given[:, 1].astype(np.float32),
                                      err_msg=f"{engine} {cell} {part}: the empty row's state")


# ---- edits of the attending decoder graph: each is a mistake the ladder must see ----

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
    "unmasked": (_unmasked, "attention"),
    "context-last": (_context_last, "logits"),  # the weights stay right: h_t does not change
    # The logits stay right: the memory is zeros at PAD, so the context is 0 either way;
    # only the weights show that the rule of shared.layout.attention is broken.
    "empty-rows-attend": (_empty_rows_attend, "attention"),
}


@ON_TENSORFLOW_ONLY
@pytest.mark.parametrize("mutation", list(GRAPH_MUTATIONS))
@pytest.mark.parametrize("kind", ["luong", "bahdanau"])
@pytest.mark.parametrize("engine", ["onnx_impl"])
def test_a_broken_attention_graph_is_caught_by_the_ladder(engine, kind, mutation):
    """Each edit of the decoder graph, run by ONNX Runtime, moves its rung past the
    tolerance against the reference: the rungs see what they claim to."""
    onnx_impl = backend(engine)
    from onnx_impl.model import Seq2Seq
    from shared.onnx.export import build_models

    case = grid_case(("lstm", 1, True, 6, 6, kind))
    models = build_models(case.weights, case.config)
    edit, rung = GRAPH_MUTATIONS[mutation]
    edit(models["decoder"].graph)
    model = Seq2Seq(case.config, {part: m.SerializeToString() for part, m in models.items()})
    rows = climb(onnx_impl, model, case.reference, [rung])
    assert rows and not all(row.ok for row in rows), f"{kind} {mutation} went unnoticed: {rows}"
