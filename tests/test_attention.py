"""Attention's own rungs: the reference by hand, Keras's built-in layers, names, all-PAD, refusals.

The parity grid (test_ladder_3_model.py) and training parity (test_ladder_5_training.py) run the
whole ladder for attending models in both backends and on every Keras backend.
This file checks what they stand on: the NumPy reference against the equations
written as plain loops; Keras's ``layers.Attention`` and ``layers.AdditiveAttention``
against the reference, which is what makes them the right layers for the two
scores (with projections in front); the canonical names; the all-PAD source
rule in the forward pass and the gradients; and the refusals of a decoder given
no memory or a bad one, the same in both backends.

Shape legend: B batch, S source length, T target length, H = H_dec decoder hidden.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared import BOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import FLOAT64_ATOL, LOGITS_ATOL, STATE_ATOL, assert_close
from shared.decoding.memory import Memory, check_attention_memory
from shared.layout import canonical_shapes, check_weights, count_parameters, random_weights
from shared.layout.attention import attention_shapes
from shared.reference.attention import attend
from shared.text.data import random_ids
from tests.refusal import same_refusal
from tests.support import (
    BUILDERS,
    ENGINES,
    TRAINERS,
    V_SRC,
    V_TGT,
    backend,
    grid_weights,
    model_with,
)

KINDS = ["luong", "bahdanau"]


def _config(kind: str, **sizes) -> Seq2SeqConfig:
    sizes = {"embedding_dim": 5, "hidden_size": 3, "num_layers": 1, "bidirectional": True,
             **sizes}
    return Seq2SeqConfig(V_SRC, V_TGT, attention=kind, **sizes)


def _score_by_hand(kind, W, h_t, h_s) -> float:
    """One score, one query and one source position, as the equations write it."""
    H = len(h_t)
    if kind == "luong":  # h_t^T W_a h_s
        return sum(h_t[i] * W["W_a"][i, j] * h_s[j] for i in range(H) for j in range(H))
    # v_a^T tanh(W_1 h_t + W_2 h_s)
    return sum(
        W["v_a"][i] * math.tanh(sum(W["W_1"][i, j] * h_t[j] + W["W_2"][i, j] * h_s[j]
                                    for j in range(H)))
        for i in range(H)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_reference_attention_is_the_equations_written_as_loops(rng, kind):
    config = _config(kind)
    weights = random_weights(config, seed=2)
    W = {name.rsplit(".", 1)[1]: value.astype(np.float64) for name, value in weights.items()
         if name.startswith("decoder.attention.")}
    B, T, S, H = 3, 2, 4, config.decoder_hidden_size
    h_t, h_s = rng.uniform(-1, 1, (B, T, H)), rng.uniform(-1, 1, (B, S, H))
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], bool)  # row 2: all PAD
    attentional, a = attend(kind, weights, h_t, h_s, mask)
    for b in range(B):
        real = [s for s in range(S) if mask[b, s]]
        for t in range(T):
            raw = {s: _score_by_hand(kind, W, h_t[b, t], h_s[b, s]) for s in real}
            total = sum(math.exp(v) for v in raw.values())
            expected = [math.exp(raw[s]) / total if s in raw else 0.0 for s in range(S)]
            context = sum((expected[s] * h_s[b, s] for s in real), np.zeros(H))
            combined = np.concatenate([context, h_t[b, t]])  # [context; h_t]
            assert_close(f"{kind} a[{b}, {t}]", a[b, t], expected, FLOAT64_ATOL)
            assert_close(f"{kind} h~[{b}, {t}]", attentional[b, t],
                         np.tanh(W["W_c"] @ combined), FLOAT64_ATOL)
    # The all-PAD row: weights 0, context 0, h~ = tanh(W_c [0; h_t]).
    assert not a[2].any()


@pytest.mark.parametrize("kind", KINDS)
def test_keras_builtin_layers_compute_the_scores_with_projections_in_front(rng, kind):
    """Attention(score_mode="dot") on [h_t, h_s, W_a h_s] is Luong's "general" score;
    AdditiveAttention on [W_1 h_t, h_s, W_2 h_s] with scale = v_a is Bahdanau's."""
    backend("keras_impl")
    from keras import layers, ops

    config = _config(kind)
    weights = random_weights(config, seed=4)
    W = {name.rsplit(".", 1)[1]: value for name, value in weights.items()
         if name.startswith("decoder.attention.")}
    B, T, S, H = 2, 3, 5, config.decoder_hidden_size
    h_t = rng.uniform(-1, 1, (B, T, H)).astype(np.float32)
    h_s = rng.uniform(-1, 1, (B, S, H)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], bool)
    if kind == "luong":
        layer = layers.Attention(score_mode="dot")
        inputs = [h_t, h_s, h_s @ W["W_a"].T]                     # key = W_a h_s
    else:
        layer = layers.AdditiveAttention(use_scale=True)
        inputs = [h_t @ W["W_1"].T, h_s, h_s @ W["W_2"].T]          # query W_1 h_t, key W_2 h_s
        layer.build([x.shape for x in inputs])
        layer.scale.assign(W["v_a"])                               # its scale vector is v_a
    context, a = layer([ops.convert_to_tensor(x) for x in inputs], mask=[None, mask],
                       return_attention_scores=True)
    _, a_ref = attend(kind, weights, h_t, h_s, mask)
    assert_close(f"keras {type(layer).__name__} weights", ops.convert_to_numpy(a), a_ref,
                 STATE_ATOL)
    assert_close(f"keras {type(layer).__name__} context", ops.convert_to_numpy(context),
                 a_ref @ h_s, STATE_ATOL)


@pytest.mark.parametrize("kind", KINDS)
def test_canonical_names_shapes_and_count(kind):
    config = _config(kind, bidirectional=True, hidden_size=3)  # H_dec = 6
    H = 6
    expected = {"luong": {"W_a": (H, H), "W_c": (H, 2 * H)},
                "bahdanau": {"W_1": (H, H), "W_2": (H, H), "v_a": (H,), "W_c": (H, 2 * H)}}[kind]
    assert attention_shapes(config) == {f"decoder.attention.{k}": v for k, v in expected.items()}
    names = list(canonical_shapes(config))
    plain = list(canonical_shapes(Seq2SeqConfig(**{**config.to_dict(), "attention": "none"})))
    # Between the decoder's layers and its output, nothing else moves.
    assert names == plain[:-2] + list(attention_shapes(config)) + plain[-2:]
    weights = random_weights(config, seed=1)
    extra = sum(math.prod(shape) for shape in expected.values())
    plain_weights = random_weights(Seq2SeqConfig(**{**config.to_dict(), "attention": "none"}))
    assert count_parameters(weights) == count_parameters(plain_weights) + extra
    # The score weights are drawn three times wider than W_c (see random_weights).
    score = [v for k, v in weights.items() if k.startswith("decoder.attention.") and
             not k.endswith("W_c")]
    assert max(float(np.abs(v).max()) for v in score) > 0.3
    assert float(np.abs(weights["decoder.attention.W_c"]).max()) <= 0.3


def test_weights_of_the_other_attention_are_refused_with_a_hint():
    luong, bahdanau = _config("luong"), _config("bahdanau")
    with pytest.raises(ValueError, match=r"same model with attention='luong', but "
                                         r"config.attention is 'bahdanau'"):
        check_weights(random_weights(luong), bahdanau)
    plain = Seq2SeqConfig(**{**luong.to_dict(), "attention": "none"})
    with pytest.raises(ValueError, match=r"2 unexpected: 'decoder.attention.W_a', "
                                         r"'decoder.attention.W_c'; these are the names of the "
                                         r"same model with attention='luong'"):
        check_weights(random_weights(luong), plain)


def test_reference_greedy_equals_teacher_forcing_on_its_own_answer():
    """Step by step with the memory carried gives the logits of one teacher-forced pass."""
    config = _config("bahdanau", num_layers=2)
    weights = grid_weights(config, seed=3)
    src = random_ids(np.random.default_rng(0), [6, 2, 4], V_SRC)
    tokens = reference.greedy_decode(weights, config, src, max_len=6)  # (B, 6)
    tgt_in = np.concatenate([np.full((3, 1), BOS), tokens[:, :-1]], axis=1)  # (B, 6)
    tgt_in[np.cumsum(tgt_in == PAD, axis=1) > 0] = PAD  # post-padded like a batch
    logits = reference.forward(weights, config, src, tgt_in)
    logits[:, :, [PAD, BOS]] = -np.inf
    chosen = np.where(tgt_in != PAD, logits.argmax(axis=2), PAD)
    real = tgt_in != PAD
    np.testing.assert_array_equal(chosen[real], tokens[real])


# ---- the all-PAD source row: a defined result in both backends, never NaN ----

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ENGINES)
def test_an_all_pad_source_attends_to_nothing(kind, name):
    config = _config(kind, cell="gru", bidirectional=False, hidden_size=4)
    weights = grid_weights(config, seed=6)
    module, model = model_with(name, config, weights)
    src = np.array([[5, 6, 7], [0, 0, 0]])
    tgt_in = np.array([[BOS, 4, 5], [BOS, 6, 0]])
    a = module.attention_weights(model, src, tgt_in)                       # (B, T, S)
    assert np.isfinite(a).all() and not a[1].any(), f"{name}: {a[1]}"
    # Context 0: the logits are those of h~ = tanh(W_c [0; h_t]), as in the reference.
    assert_close(f"{name} {kind} logits of an all-PAD source", module.forward(model, src, tgt_in),
                 reference.forward(weights, config, src, tgt_in), LOGITS_ATOL,
                 mask=tgt_in != PAD)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_with_an_all_pad_source_are_finite_and_agree(kind):
    config = _config(kind, num_layers=2)
    weights = grid_weights(config, seed=8)
    src = np.array([[5, 6, 7, 8], [0, 0, 0, 0], [9, 4, 0, 0]])
    tgt_in = np.array([[BOS, 4, 5], [BOS, 6, 0], [BOS, 0, 0]])
    tgt_out = np.array([[4, 5, 2], [6, 2, 0], [2, 0, 0]])
    grads = {}
    for name in TRAINERS:
        module, model = model_with(name, config, weights)
        loss, grads[name] = module.loss_and_gradients(model, src, tgt_in, tgt_out)
        assert math.isfinite(loss)
        for key, value in grads[name].items():
            assert np.isfinite(value).all(), f"{name} {kind}: NaN/inf in the gradient of {key}"
    for key, value in grads["torch_impl"].items():
        scale = max(float(np.abs(value).max()), 1e-6)
        assert_close(f"{kind} gradient {key}", grads["keras_impl"][key], value, 1e-4 * scale)


# ---- refusals: the same words from every engine ----

@pytest.fixture(scope="module")
def luong_models():
    config = _config("luong")
    return config, {name: model_with(name, config, random_weights(config)) for name in BUILDERS}


SRC = np.array([[5, 6, 7], [8, 0, 0]])
TGT_IN = np.array([[BOS, 4], [BOS, 0]])


def test_decode_without_memory_says_where_to_get_it(luong_models):
    _, models = luong_models
    message = same_refusal(models, lambda m, model: m.decode(model, TGT_IN, m.encode(model, SRC)))
    assert message == ("this model has luong attention: decode needs memory, the Memory that "
                       "encode(model, src, return_memory=True) returns beside the state")


@pytest.mark.parametrize(("edit", "detail"), [
    (lambda memory: memory.outputs, "memory must be a Memory(outputs, mask)"),
    (lambda memory: Memory(memory.outputs[:1], memory.mask[:1]), "expected (2, S, 6)"),
    (lambda memory: Memory(memory.outputs[..., :4], memory.mask), "expected (2, S, 6)"),
    (lambda memory: Memory(memory.outputs, memory.mask[:, :2]), "memory mask has shape (2, 2)"),
    (lambda memory: Memory(memory.outputs, memory.mask * 2), "(or 0/1); got int64 holding 2"),
    (lambda memory: Memory(memory.outputs * np.nan, memory.mask), "holds NaN/inf"),
])
def test_a_bad_memory_is_refused_alike(luong_models, edit, detail):
    _, models = luong_models

    def call(module, model):
        state, memory = module.encode(model, SRC, return_memory=True)
        return module.decode(model, TGT_IN, state, edit(memory))

    assert detail in same_refusal(models, call)


def test_a_memory_of_0_1_integers_is_read_as_a_mask():
    outputs, mask = np.zeros((2, 3, 4)), np.array([[1, 1, 0], [1, 0, 0]])
    checked = check_attention_memory((outputs, mask), 2, 4)
    assert checked.mask.dtype == bool and checked.outputs.dtype == np.float32
    np.testing.assert_array_equal(checked.mask, mask.astype(bool))


@pytest.mark.parametrize("name", BUILDERS)
def test_a_model_without_attention_does_not_read_the_memory(name):
    """Generic code may pass the memory to any model; without attention it changes nothing.

    Every engine gives a model without attention an empty memory (outputs (B, S, 0));
    its decoder ignores that one, and one made elsewhere, alike.
    """
    config = Seq2SeqConfig(V_SRC, V_TGT, 4, 3, bidirectional=True)
    module, model = model_with(name, config, random_weights(config))
    state, memory = module.encode(model, SRC, return_memory=True)
    assert memory.outputs.shape == (*SRC.shape, 0) and memory.outputs.dtype == np.float32
    np.testing.assert_array_equal(memory.mask, SRC != PAD)
    reference_memory = reference.encode(random_weights(config), config, SRC, return_memory=True)[1]
    for given in (memory, reference_memory, Memory(np.ones((*SRC.shape, 6), np.float32),
                                                   SRC != PAD)):
        with_memory, _ = module.decode(model, TGT_IN, state, given)
        without, _ = module.decode(model, TGT_IN, state)
        np.testing.assert_array_equal(with_memory, without)
    with_memory, _ = module.decode(model, TGT_IN, state, memory)
    without, _ = module.decode(model, TGT_IN, state)
    np.testing.assert_array_equal(with_memory, without)
    with pytest.raises(ValueError, match=r"this model has no attention"):
        module.attention_weights(model, SRC, TGT_IN)
