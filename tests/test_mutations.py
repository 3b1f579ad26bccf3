"""Mutation tests: every porting bug seen in the wild must fail the parity comparison.

A parity suite that passes proves little unless it would fail on a wrong port.
Each test here loads the correct weights into a real backend model and checks
that the comparison passes (so the test is not vacuous), then applies ONE bug
that people make when moving LSTM or GRU weights between frameworks and checks
that the same comparison -- the hand-off and the decoder's final state within
STATE_ATOL and the logits within LOGITS_ATOL at real positions, against the
NumPy reference -- now fails.

The bugs are applied where they happen: to the stacked PyTorch-layout or Keras-
layout arrays of ``shared.layout`` (a wrong transpose, gate order or bias rule),
to the canonical dict (swapped layers or directions, and for attention a W_a
left untransposed, W_1 and W_2 swapped, [h_t; context] where [context; h_t] was
meant), to the hand-off itself ((c, h) for (h, c), h without c), or to the model
code (the decoder's explicit ``mask=`` dropped in Keras, packing dropped in
PyTorch, the source mask dropped from the attention's scores).  Attending models
also compare their attention weights.  Shapes are chosen so
that every bug fits the shape checks (E == H, E == D*H): only the numbers can
catch it.

Where it runs: marked ``keras_torch_backend``, it runs in ``make test``'s run on Keras
on PyTorch, beside the main one (tests/run.py), and the main run (Keras on TensorFlow)
leaves it out: keras_impl's mutations are the same code on every Keras backend, and on
PyTorch they run eagerly, without a graph to trace per mutated model.  Run alone,
``pytest tests/test_mutations.py`` runs it on whichever backend KERAS_BACKEND names.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import BOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, compare
from shared.layout import (
    join_gates,
    keras_gru_to_onnx,
    layer_prefix,
    onnx_gru_to_keras,
    random_weights,
    recurrent_layers,
    reorder_gates,
    split_gates,
    torch_gru_to_keras,
    torch_lstm_to_keras,
)
from shared.text.data import random_ids
from tests.support import TRAINERS, V_SRC, V_TGT, backend, grid_weights

pytestmark = pytest.mark.keras_torch_backend

# Two layers, one direction, E == H == H_dec: a kernel fits where the recurrent
# kernel goes, and layer 0 fits where layer 1 goes, in the encoder and the decoder.
UNI = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=5, hidden_size=5, num_layers=2)
# Two layers, two directions, E == D*H: the directions swap, and so do the layers.
BI = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=8, hidden_size=4, num_layers=2, bidirectional=True)
# The same two shapes for a GRU, whose r and z blocks have the same shape too.
GRU_UNI = Seq2SeqConfig(**{**UNI.to_dict(), "cell": "gru"})
GRU_BI = Seq2SeqConfig(**{**BI.to_dict(), "cell": "gru"})
# Attention: Luong over a bidirectional LSTM, Bahdanau over a one-directional GRU.
LUONG_BI = Seq2SeqConfig(**{**BI.to_dict(), "attention": "luong"})
BAHDANAU_GRU = Seq2SeqConfig(**{**GRU_UNI.to_dict(), "attention": "bahdanau"})
CONFIGS = {"uni": UNI, "bi": BI, "gru-uni": GRU_UNI, "gru-bi": GRU_BI,
           "luong-bi": LUONG_BI, "bahdanau-gru-uni": BAHDANAU_GRU}


def _each_layer(convert):
    """A weight mutation that passes every layer's PyTorch-layout arrays through ``convert``."""

    def mutate(weights, config):
        mutated = dict(weights)
        for layer in recurrent_layers(config):  # every layer, encoder and decoder
            # weight_ih, weight_hh, bias_ih, bias_hh, gates stacked as PyTorch stacks them
            stacked = join_gates(weights, layer.prefix, config.cell)
            mutated.update(split_gates(layer.prefix, *convert(*stacked), cell=config.cell))
        return mutated

    return mutate


def _gate_swap(order: str):
    """Stack the gates as ``order`` where i, f, g, o was meant (a wrong gate table)."""
    return _each_layer(lambda *arrays: [reorder_gates(a, "ifgo", order, axis=0) for a in arrays])


def _swapped_kernels(weight_ih, weight_hh, bias_ih, bias_hh):
    return weight_hh, weight_ih, bias_ih, bias_hh


def _reshaped_not_transposed(weight_ih, weight_hh, bias_ih, bias_hh):
    # Keras kernel (in, 4H) -> PyTorch weight (4H, in) by reshape: same size, scrambled rows.
    kernel, recurrent_kernel, bias = torch_lstm_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)
    return (
        kernel.reshape(weight_ih.shape),  # (4H, in), should be kernel.T
        recurrent_kernel.reshape(weight_hh.shape),  # (4H, H), should be recurrent_kernel.T
        bias,
        np.zeros_like(bias),
    )


def _b_hh_dropped(weight_ih, weight_hh, bias_ih, bias_hh):
    # A PyTorch -> Keras port that keeps bias_ih as the Keras bias and forgets bias_hh.
    return weight_ih, weight_hh, bias_ih, np.zeros_like(bias_hh)


def _b_hh_doubled(weight_ih, weight_hh, bias_ih, bias_hh):
    return weight_ih, weight_hh, bias_ih, 2 * bias_hh


def _keras_bias_in_both(weight_ih, weight_hh, bias_ih, bias_hh):
    # The Keras bias (the sum) copied into both PyTorch biases instead of (bias, zeros).
    kernel, recurrent_kernel, bias = torch_lstm_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)
    return kernel.T, recurrent_kernel.T, bias, bias.copy()


def _gru_r_z_not_swapped(weight_ih, weight_hh, bias_ih, bias_hh):
    # keras-team/keras#15915: a Keras GRU's kernels transposed into nn.GRU, but z r h
    # left where r z n belong.
    kernel, recurrent_kernel, bias = torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)
    return kernel.T, recurrent_kernel.T, bias[0], bias[1]


def _gru_reset_after_mismatch(weight_ih, weight_hh, bias_ih, bias_hh):
    # A reset_after=True GRU read as linear_before_reset=0 (ONNX's default): the two
    # biases summed into one, as for a reset_after=False GRU, then loaded as b_ih.
    keras_arrays = torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)
    kernel, recurrent_kernel, bias = onnx_gru_to_keras(*keras_gru_to_onnx(*keras_arrays), 0)
    weight_ih, weight_hh, _, _ = (reorder_gates(a, "keras", "torch", axis=0, cell="gru")
                                  for a in (kernel.T, recurrent_kernel.T, bias, bias))
    summed = reorder_gates(bias, "keras", "torch", axis=0, cell="gru")
    return weight_ih, weight_hh, summed, np.zeros_like(summed)


def _gru_bias_rows_swapped(weight_ih, weight_hh, bias_ih, bias_hh):
    # Keras's (2, 3H) bias read as [recurrent; input] instead of [input; recurrent].
    return weight_ih, weight_hh, bias_hh, bias_ih


def _gru_b_hn_folded_into_b_in(weight_ih, weight_hh, bias_ih, bias_hh):
    # The LSTM habit "only the sum of the biases acts", applied to a GRU's n gate,
    # where b_hn sits inside r * (W_hn h + b_hn) and cannot move.
    H = weight_hh.shape[1]
    bias_ih, bias_hh = bias_ih.copy(), bias_hh.copy()
    bias_ih[2 * H :] += bias_hh[2 * H :]
    bias_hh[2 * H :] = 0.0
    return weight_ih, weight_hh, bias_ih, bias_hh


def _gru_reshaped_not_transposed(weight_ih, weight_hh, bias_ih, bias_hh):
    # Keras kernel (in, 3H) -> PyTorch weight (3H, in) by reshape: a missing transpose.
    kernel, recurrent_kernel, bias = torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)
    to_torch = lambda a: reorder_gates(a, "keras", "torch", axis=0, cell="gru")  # noqa: E731
    return (to_torch(kernel.reshape(weight_ih.shape)),
            to_torch(recurrent_kernel.reshape(weight_hh.shape)),
            to_torch(bias[0]), to_torch(bias[1]))


def _attention_edit(edit):
    """A weight mutation that changes the decoder.attention.* entries with ``edit``."""

    def mutate(weights, config):
        mutated = dict(weights)
        attention = {name.rsplit(".", 1)[1]: value for name, value in weights.items()
                     if name.startswith("decoder.attention.")}
        mutated.update({f"decoder.attention.{name}": value
                        for name, value in edit(**attention).items()})
        return mutated

    return mutate


def _concat_swapped(W_c, **_):
    # h~ = tanh(W_c [h_t; c]) where [c; h_t] was meant: W_c's two halves change places.
    H = W_c.shape[0]
    return {"W_c": np.concatenate([W_c[:, H:], W_c[:, :H]], axis=1)}


def _renamed(pairs):
    """A weight mutation that exchanges the entries of each (prefix_a, prefix_b) pair."""

    def mutate(weights, config):
        mutated = dict(weights)
        for a, b in pairs(config):
            for name in weights:
                if name.startswith(a + "."):
                    other = b + name[len(a) :]
                    mutated[name], mutated[other] = weights[other], weights[name]
        return mutated

    return mutate


def _directions_swapped(config):
    return [
        (layer_prefix("encoder", k, "forward"), layer_prefix("encoder", k, "backward"))
        for k in range(config.num_layers)
    ]


def _encoder_layers_swapped(config):
    directions = ("forward", "backward")[: config.num_directions]
    return [(layer_prefix("encoder", 0, d), layer_prefix("encoder", 1, d)) for d in directions]


def _decoder_layers_swapped(config):
    return [(layer_prefix("decoder", 0), layer_prefix("decoder", 1))]


def _keras_decoder_without_explicit_mask(monkeypatch):
    """The Keras 3 trap: rely on Embedding(mask_zero=True) in a layer given initial_state=.

    Keras fills only a layer's first argument's mask from the tensor it came with
    when the call has more tensor arguments, so the decoder then runs over PAD and
    its final state is the state after the padding.
    """
    from keras_impl.model import Seq2Seq

    def run_relying_on_the_implicit_mask(self, rnn, x, mask, initial_state=None, training=False):
        outputs = rnn(x, initial_state=initial_state, training=training)  # no mask=
        n = len(self.config.state_names)
        state = list(outputs[1:])
        if len(state) > n:
            state = [keras_ops().concatenate([fw, bw], axis=-1)
                     for fw, bw in zip(state[:n], state[n:], strict=True)]
        return outputs[0], state

    monkeypatch.setattr(Seq2Seq, "_run", run_relying_on_the_implicit_mask)


def keras_ops():
    import keras

    return keras.ops


def _torch_without_packing(monkeypatch):
    """PyTorch's version of the same bug: padded batches run through nn.LSTM unpacked."""
    import torch_impl.model

    def run_unpacked(rnn, x, lengths, state=None):
        if state is not None:
            state = tuple(state) if len(state) == 2 else state[0]
        out, final = rnn(x, state)
        return out, tuple(final) if isinstance(final, tuple) else (final,)

    monkeypatch.setattr(torch_impl.model, "run_packed", run_unpacked)


# The model-code bugs, one per backend: each drops the thing that stops a row at its
# last real token.
MASK_DROPPED = {"keras_impl": _keras_decoder_without_explicit_mask,
                "torch_impl": _torch_without_packing}

# name -> (config key, weight mutation or None, hand-off mutation or None)
MUTATIONS = {
    "kernel-recurrent-kernel-swapped": ("uni", _each_layer(_swapped_kernels), None),
    "gates-i-f-swapped": ("uni", _gate_swap("figo"), None),
    "gates-f-g-swapped": ("uni", _gate_swap("igfo"), None),
    "gates-g-o-swapped": ("uni", _gate_swap("ifog"), None),
    "kernel-reshaped-not-transposed": ("bi", _each_layer(_reshaped_not_transposed), None),
    "b_hh-dropped": ("uni", _each_layer(_b_hh_dropped), None),
    "b_hh-doubled": ("uni", _each_layer(_b_hh_doubled), None),
    "keras-bias-in-b_ih-and-b_hh": ("bi", _each_layer(_keras_bias_in_both), None),
    "forward-backward-swapped": ("bi", _renamed(_directions_swapped), None),
    "encoder-layers-swapped": ("bi", _renamed(_encoder_layers_swapped), None),
    "encoder-layers-swapped-uni": ("uni", _renamed(_encoder_layers_swapped), None),
    "decoder-layers-swapped": ("uni", _renamed(_decoder_layers_swapped), None),
    "handoff-as-c-h": ("bi", None, lambda h, c: (c, h)),
    "handoff-h-without-c": ("bi", None, lambda h, c: (h, np.zeros_like(c))),
    "gru-r-z-not-swapped": ("gru-uni", _each_layer(_gru_r_z_not_swapped), None),
    "gru-reset_after-mismatch": ("gru-uni", _each_layer(_gru_reset_after_mismatch), None),
    "gru-bias-rows-swapped": ("gru-bi", _each_layer(_gru_bias_rows_swapped), None),
    "gru-b_hn-folded-into-b_in": ("gru-uni", _each_layer(_gru_b_hn_folded_into_b_in), None),
    "gru-kernel-reshaped-not-transposed": (
        "gru-bi", _each_layer(_gru_reshaped_not_transposed), None),
    "gru-kernel-recurrent-kernel-swapped": ("gru-uni", _each_layer(_swapped_kernels), None),
    "gru-encoder-layers-swapped": ("gru-uni", _renamed(_encoder_layers_swapped), None),
    # A Keras Dense kernel (in, out) copied as the canonical (out, in) W_a.
    "luong-W_a-not-transposed": ("luong-bi", _attention_edit(lambda W_a, **_: {"W_a": W_a.T}),
                                 None),
    "luong-context-h_t-swapped-in-concat": ("luong-bi", _attention_edit(_concat_swapped), None),
    "bahdanau-W_1-W_2-swapped": (
        "bahdanau-gru-uni", _attention_edit(lambda W_1, W_2, **_: {"W_1": W_2, "W_2": W_1}), None),
    "bahdanau-context-h_t-swapped-in-concat": (
        "bahdanau-gru-uni", _attention_edit(_concat_swapped), None),
}


@pytest.fixture(scope="module")
def batch():
    """(src (5, 7), tgt_in (5, 6)): mixed lengths, a length-1 row and an empty source row."""
    rng = np.random.default_rng(11)
    src = random_ids(rng, [7, 1, 0, 4, 6], V_SRC)
    tgt_in = random_ids(rng, [5, 3, 1, 6, 2], V_TGT, first=BOS)
    return src, tgt_in


@pytest.fixture(scope="module")
def models():
    """One model per (config key, backend), built once; each test imports weights into it."""
    built = {}
    for key, config in CONFIGS.items():
        for name in TRAINERS:
            module = backend(name)
            built[key, name] = (module, module.build_model(config, seed=0))
    return built


def _truth(config, weights, src, tgt_in):
    """The reference's hand-off, logits, decoder final state and attention weights (or None)."""
    handoff_ref, memory = reference.encode(weights, config, src, return_memory=True)
    logits_ref, final_ref = reference.decode(weights, config, tgt_in, handoff_ref, memory)
    a_ref = None
    if config.has_attention:
        a_ref = reference.attention_weights(weights, config, src, tgt_in)  # (B, T, S)
    return handoff_ref, logits_ref, final_ref, a_ref


def _comparisons(module, model, config, weights, handoff, src, tgt_in, truth):
    """Load ``weights``, run the backend, and compare with the reference's ``truth``."""
    module.import_weights(model, weights)
    state, memory = module.encode(model, src, return_memory=True)  # each (L, B, H_dec)
    logits, final = module.decode(model, tgt_in, handoff(*state), memory)  # (B, T, V_tgt)
    handoff_ref, logits_ref, final_ref, a_ref = truth
    names = config.state_names
    found = [
        *(compare(f"hand-off {n}", s, r, STATE_ATOL)
          for n, s, r in zip(names, state, handoff_ref, strict=True)),
        compare("logits", logits, logits_ref, LOGITS_ATOL, mask=tgt_in != PAD),
        *(compare(f"decoder final {n}", s, r, STATE_ATOL)
          for n, s, r in zip(names, final, final_ref, strict=True)),
    ]
    if a_ref is not None:
        a = module.attention_weights(model, src, tgt_in)  # (B, T, S)
        found.append(compare("attention weights", a, a_ref, STATE_ATOL, mask=tgt_in != PAD))
    return found


@pytest.mark.parametrize("backend_name", TRAINERS)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_parity_flags_the_porting_bug(models, batch, mutation, backend_name):
    key, mutate_weights, mutate_handoff = MUTATIONS[mutation]
    config = CONFIGS[key]
    module, model = models[key, backend_name]
    src, tgt_in = batch
    weights = grid_weights(config, seed=5)
    truth = _truth(config, weights, src, tgt_in)

    correct = _comparisons(module, model, config, weights, lambda *s: s, src, tgt_in, truth)
    assert all(c.ok for c in correct), "the correct port must pass: " + "; ".join(map(str, correct))

    mutated = weights if mutate_weights is None else mutate_weights(weights, config)
    if mutate_weights is not None:
        changed = [name for name in weights if not np.array_equal(weights[name], mutated[name])]
        assert changed, f"{mutation} left every weight as it was"
    handoff = mutate_handoff or (lambda *s: s)
    found = _comparisons(module, model, config, mutated, handoff, src, tgt_in, truth)
    assert not all(c.ok for c in found), (
        f"{backend_name}: the porting bug {mutation!r} passed the parity comparison unnoticed: "
        + "; ".join(map(str, found))
    )


@pytest.mark.parametrize("backend_name", TRAINERS)
@pytest.mark.parametrize("key", ["uni", "gru-bi"])
def test_dropping_the_mask_or_the_packing_leaves_the_decoder_state_after_the_padding(
    models, batch, monkeypatch, key, backend_name
):
    """Keras: no explicit mask= beside initial_state=; PyTorch: no packing.

    In Keras the encoder still gets its implicit mask (it has no initial_state) and
    the logits at real positions stay right (the padding comes after them), so only
    the decoder's final state shows the trap: the state after the padding, not after
    the last real token, silently.  Unpacked PyTorch runs the encoder over PAD too.
    """
    config = CONFIGS[key]
    module, _ = models[key, backend_name]
    src, tgt_in = batch
    weights = random_weights(config, seed=5)
    truth = _truth(config, weights, src, tgt_in)
    model = module.build_model(config, seed=0)
    correct = _comparisons(module, model, config, weights, lambda *s: s, src, tgt_in, truth)
    assert all(c.ok for c in correct), "; ".join(map(str, correct))

    MASK_DROPPED[backend_name](monkeypatch)
    model = module.build_model(config, seed=0)  # built and traced with the bug in place
    found = {c.name: c for c in
             _comparisons(module, model, config, weights, lambda *s: s, src, tgt_in, truth)}
    if backend_name == "keras_impl":  # silent everywhere but in the decoder's final state
        assert found["hand-off h"].ok and found["logits"].ok, list(map(str, found.values()))
    assert not found["decoder final h"].ok, (
        f"{backend_name}: the decoder ran over PAD and nobody noticed: {found['decoder final h']}"
    )


def _keras_attention_without_source_mask(monkeypatch):
    """Keras: every source position scored, PAD included (the value mask left out)."""
    from keras import ops

    from keras_impl.attention import DecoderAttention

    call = DecoderAttention.call
    monkeypatch.setattr(DecoderAttention, "call",
                        lambda self, h_t, h_s, source_mask: call(self, h_t, h_s,
                                                                  ops.ones_like(source_mask)))


def _torch_attention_without_source_mask(monkeypatch):
    """PyTorch: no masked_fill, so PAD positions take part in the softmax."""
    import torch

    from torch_impl.attention import DecoderAttention

    forward = DecoderAttention.forward
    monkeypatch.setattr(DecoderAttention, "forward",
                        lambda self, h_t, h_s, mask: forward(self, h_t, h_s,
                                                             torch.ones_like(mask)))


SOURCE_MASK_DROPPED = {"keras_impl": _keras_attention_without_source_mask,
                       "torch_impl": _torch_attention_without_source_mask}


@pytest.mark.parametrize("backend_name", TRAINERS)
@pytest.mark.parametrize("key", ["luong-bi", "bahdanau-gru-uni"])
def test_attending_to_source_padding_is_caught(models, batch, monkeypatch, key, backend_name):
    """PAD source positions left in the softmax: they take weight, and the context drifts.

    The memory is zero at PAD, so a PAD position's score is not even random: Luong
    scores it 0, Bahdanau v_a^T tanh(W_1 h_t); either takes weight from the real tokens.
    """
    config = CONFIGS[key]
    module, _ = models[key, backend_name]
    src, tgt_in = batch
    weights = grid_weights(config, seed=5)
    truth = _truth(config, weights, src, tgt_in)
    SOURCE_MASK_DROPPED[backend_name](monkeypatch)
    model = module.build_model(config, seed=0)  # built and traced with the bug in place
    found = {c.name: c for c in
             _comparisons(module, model, config, weights, lambda *s: s, src, tgt_in, truth)}
    assert found["hand-off h"].ok, "the encoder does not attend: its hand-off stays right"
    assert not found["attention weights"].ok and not found["logits"].ok, (
        f"{backend_name}: attention on PAD went unnoticed: "
        + "; ".join(map(str, found.values())))
