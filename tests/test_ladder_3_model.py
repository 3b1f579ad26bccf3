"""The parity ladder: each backend against the NumPy reference, then against each other.

Rungs, from the smallest to the whole model (the cell and single-layer rungs
are in test_layout.py and test_reference.py):
  hand-off (h, c) of every layer and the memory -> teacher-forced logits ->
  attention weights -> greedy tokens -> beam tokens -> weights through the
  canonical layout -> the hand-off (and memory) crossing frameworks.
The grid runs every rung for both cells: an LSTM hands off (h, c), a GRU (h,);
four of its models attend (Luong and Bahdanau, each with both cells).
Random, asymmetric weights; a batch of mixed lengths with an empty source row;
float32; dropout off.  Every failure names the cell, the tensor and the largest
difference.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import PAD, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.decoding.memory import Memory
from shared.layout import random_weights
from tests.support import (
    BACKENDS,
    GRID,
    KERAS_BACKEND,
    OTHER_KERAS_GRID,
    assert_attention_weights,
    grid_config,
    grid_id,
    grid_weights,
    keras_export,
    model_with,
    reference_beam,
    sample_batch,
)


@pytest.fixture(scope="module", params=GRID if KERAS_BACKEND == "tensorflow" else OTHER_KERAS_GRID,
                ids=grid_id)
def case(request):
    """One configuration: its random canonical weights, a batch and both models."""
    config = grid_config(*request.param)
    weights = grid_weights(config, seed=7)
    src, tgt_in = sample_batch(seed=3)
    models = {name: model_with(name, config, weights) for name in BACKENDS}
    return config, weights, src, tgt_in, models


def _real(tgt_in):
    return tgt_in != PAD                                                    # (B, T)


@pytest.mark.parametrize("name", BACKENDS)
def test_handoff_matches_reference_every_layer(case, name):
    config, weights, src, _, models = case
    module, model = models[name]
    state, memory = module.encode(model, src, return_memory=True)          # each (L, B, H_dec)
    expected, memory_ref = reference.encode(weights, config, src, return_memory=True)
    assert len(state) == len(config.state_names), f"{config.cell} hands off {config.state_names}"
    for part, value, value_ref, alone in zip(config.state_names, state, expected,
                                             module.encode(model, src), strict=True):
        assert value.shape == (config.num_layers, len(src), config.decoder_hidden_size)
        assert value.dtype == np.float32
        np.testing.assert_array_equal(alone, value, err_msg=f"{name} encode without memory")
        for k in range(config.num_layers):
            assert_close(f"{name} {config.cell} hand-off {part} layer {k}", value[k],
                         value_ref[k], STATE_ATOL)
        empty = (src == PAD).all(axis=1)
        assert empty.any() and not value[:, empty].any(), "an all-PAD row hands off zeros"
    # The memory attention reads: the top layer's outputs, zeros at PAD, and the mask.
    assert memory.outputs.dtype == np.float32 and memory.mask.dtype == bool
    np.testing.assert_array_equal(memory.mask, src != PAD, err_msg=f"{name} memory mask")
    assert_close(f"{name} {config.cell} memory outputs", memory.outputs, memory_ref.outputs,
                 STATE_ATOL)


@pytest.mark.parametrize("name", BACKENDS)
def test_teacher_forced_logits_and_final_state(case, name):
    config, weights, src, tgt_in, models = case
    module, model = models[name]
    state, memory = reference.encode(weights, config, src, return_memory=True)
    logits, final = module.decode(model, tgt_in, tuple(s.astype(np.float32) for s in state),
                                  memory)
    logits_ref, final_ref = reference.decode(weights, config, tgt_in, state, memory)
    assert logits.shape == (len(tgt_in), tgt_in.shape[1], config.tgt_vocab_size)
    assert_close(f"{name} {config.cell} {config.attention} logits", logits, logits_ref,
                 LOGITS_ATOL, mask=_real(tgt_in))
    for part, value, value_ref in zip(config.state_names, final, final_ref, strict=True):
        assert_close(f"{name} {config.cell} decoder final {part}", value, value_ref, STATE_ATOL)
    assert_close(
        f"{name} {config.cell} forward logits", module.forward(model, src, tgt_in), logits_ref,
        LOGITS_ATOL, mask=_real(tgt_in),
    )


@pytest.mark.parametrize("name", BACKENDS)
def test_attention_weights_match_reference(case, name):
    """a (B, T, S): sums to 1 over real source tokens, 0 on PAD, all 0 for an all-PAD source."""
    config, weights, src, tgt_in, models = case
    module, model = models[name]
    assert_attention_weights(name, module, model, weights, config, src, tgt_in)


@pytest.mark.parametrize("name", BACKENDS)
def test_greedy_tokens_equal_reference(case, name):
    config, weights, src, _, models = case
    module, model = models[name]
    tokens = module.greedy_decode(model, src, max_len=9)
    expected = reference.greedy_decode(weights, config, src, max_len=9)
    assert tokens.dtype == np.int64 and tokens.shape == (len(src), 9)
    np.testing.assert_array_equal(tokens, expected, err_msg=f"{name} greedy tokens")


@pytest.mark.parametrize("name", BACKENDS)
def test_beam_tokens_equal_reference_and_beam1_is_greedy(case, name):
    config, weights, src, _, models = case
    module, model = models[name]
    beam = module.beam_decode(model, src, beam_size=3, max_len=7)
    np.testing.assert_array_equal(
        beam, reference_beam(weights, config, src, 3, 7), err_msg=f"{name} beam tokens"
    )
    np.testing.assert_array_equal(
        module.beam_decode(model, src, beam_size=1, max_len=7),
        module.greedy_decode(model, src, max_len=7),
        err_msg=f"{name}: beam_size=1 must equal greedy",
    )


@pytest.mark.parametrize("name", BACKENDS)
def test_export_of_import_gives_the_weights_back(case, name):
    config, weights, _, _, models = case
    module, model = models[name]
    exported = module.export_weights(model)
    assert list(exported) == list(weights), "canonical names and order"
    # A Keras LSTM keeps one bias, the sum; a Keras GRU keeps both, like PyTorch.
    expected = keras_export(weights, config) if name == "keras_impl" else weights
    for key, value in expected.items():
        assert_close(f"{name} export {key}", exported[key], value, 1e-7)


def test_keras_to_canonical_to_torch_and_back(case):
    """Keras -> canonical -> a fresh PyTorch model -> canonical -> Keras, the same logits.

    The Keras model at the end is the case's own, first given other weights (seed 99),
    so that a weight the import missed would show; reusing it spares a retrace (about
    2 s a model on TensorFlow).  Its own weights are put back afterwards.
    """
    config, weights, src, tgt_in, models = case
    keras_impl, keras_model = models["keras_impl"]
    torch_impl, _ = models["torch_impl"]
    expected = keras_impl.forward(keras_model, src, tgt_in)
    fresh_torch = torch_impl.build_model(config, seed=1)
    torch_impl.import_weights(fresh_torch, keras_impl.export_weights(keras_model))
    keras_impl.import_weights(keras_model, random_weights(config, seed=99))
    try:
        keras_impl.import_weights(keras_model, torch_impl.export_weights(fresh_torch))
        real = _real(tgt_in)
        assert_close("keras->torch logits", torch_impl.forward(fresh_torch, src, tgt_in),
                     expected, LOGITS_ATOL, mask=real)
        assert_close("keras->torch->keras logits", keras_impl.forward(keras_model, src, tgt_in),
                     expected, LOGITS_ATOL, mask=real)
    finally:
        keras_impl.import_weights(keras_model, weights)


@pytest.mark.parametrize(("encoder", "decoder"), [BACKENDS, BACKENDS[::-1]])
def test_cross_handoff_gives_reference_logits(case, encoder, decoder):
    """The seed question as a test: hand the whole state (h and c, or a GRU's h) across.

    With attention the memory crosses too: NumPy arrays, read by either framework.
    """
    config, weights, src, tgt_in, models = case
    enc_module, enc_model = models[encoder]
    dec_module, dec_model = models[decoder]
    handoff, memory = enc_module.encode(enc_model, src, return_memory=True)   # (h, c), Memory
    assert isinstance(memory, Memory)
    logits, _ = dec_module.decode(dec_model, tgt_in, handoff, memory)
    expected = reference.forward(weights, config, src, tgt_in)
    assert_close(f"{encoder} encoder -> {decoder} decoder logits", logits, expected,
                 LOGITS_ATOL, mask=_real(tgt_in))


CHECKPOINTED = [("lstm", "none"), ("gru", "none"), ("lstm", "luong"), ("gru", "bahdanau")]


@pytest.mark.parametrize(("cell", "attention"), CHECKPOINTED)
@pytest.mark.parametrize(("writer", "reader"), [BACKENDS, BACKENDS[::-1]])
def test_a_checkpoint_saved_from_one_backend_runs_in_the_other(tmp_path, cell, attention, writer,
                                                               reader):
    from shared import Tokenizer, load_checkpoint, save_checkpoint

    config = grid_config(cell, 2, True, 6, 6, attention)
    weights = grid_weights(config, seed=9)
    src, tgt_in = sample_batch(seed=4)
    module, model = model_with(writer, config, weights)
    tokens = [chr(ord("a") + i) for i in range(config.src_vocab_size - 4)]
    src_tok = Tokenizer(("<pad>", "<bos>", "<eos>", "<unk>", *tokens), "char")
    tgt_tok = Tokenizer(src_tok.tokens[: config.tgt_vocab_size], "char")
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, module.export_weights(model), config, src_tok, tgt_tok)
    loaded = load_checkpoint(path)
    assert loaded.config == config and (loaded.config.cell, loaded.config.attention) == (
        cell, attention)
    other, other_model = model_with(reader, loaded.config, loaded.weights)
    assert_close(f"{cell} {writer} checkpoint -> {reader} logits",
                 other.forward(other_model, src, tgt_in), reference.forward(weights, config, src,
                                                                            tgt_in),
                 LOGITS_ATOL, mask=_real(tgt_in))
