"""Mutation tests: every porting bug seen in the wild must fail the parity comparison.

A parity suite that passes proves little unless it would fail on a wrong port.
Each test here loads the correct weights into a real backend model and checks
that the comparison passes (so the test is not vacuous), then applies ONE bug
that people make when moving LSTM weights between frameworks and checks that
the same comparison -- the hand-off (h, c) within STATE_ATOL and the logits
within LOGITS_ATOL at real positions, against the NumPy reference -- now fails.

The bugs are applied where they happen: to the stacked PyTorch-layout or Keras-
layout arrays of ``shared.layout`` (a wrong transpose, gate order or bias rule),
to the canonical dict (swapped layers or directions), or to the hand-off itself
((c, h) for (h, c), h without c).  Shapes are chosen so that every bug fits the
shape checks (E == H, E == D*H): only the numbers can catch it.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import BOS, PAD, Seq2SeqConfig, reference
from shared.compare import LOGITS_ATOL, STATE_ATOL, compare
from shared.layout import (
    join_gates,
    layer_prefix,
    random_weights,
    reorder_gates,
    split_gates,
    torch_lstm_to_keras,
)
from tests.support import BACKENDS, V_SRC, V_TGT, backend, ragged_ids

# Two layers, one direction, E == H == H_dec: a kernel fits where the recurrent
# kernel goes, and layer 0 fits where layer 1 goes, in the encoder and the decoder.
UNI = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=5, hidden_size=5, num_layers=2)
# Two layers, two directions, E == D*H: the directions swap, and so do the layers.
BI = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=8, hidden_size=4, num_layers=2, bidirectional=True)
CONFIGS = {"uni": UNI, "bi": BI}


def _prefixes(config: Seq2SeqConfig) -> list[str]:
    """Every LSTM layer's canonical prefix, encoder and decoder."""
    directions = ("forward", "backward")[: config.num_directions]
    prefixes = [
        layer_prefix("encoder", k, d) for k in range(config.num_layers) for d in directions
    ]
    return prefixes + [layer_prefix("decoder", k) for k in range(config.num_layers)]


def _each_layer(convert):
    """A weight mutation that passes every layer's PyTorch-layout arrays through ``convert``."""

    def mutate(weights, config):
        mutated = dict(weights)
        for prefix in _prefixes(config):
            stacked = join_gates(weights, prefix)  # weight_ih, weight_hh, bias_ih, bias_hh
            mutated.update(split_gates(prefix, *convert(*stacked)))
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
}


@pytest.fixture(scope="module")
def batch():
    """(src (5, 7), tgt_in (5, 6)): mixed lengths, a length-1 row and an empty source row."""
    rng = np.random.default_rng(11)
    src = ragged_ids(rng, [7, 1, 0, 4, 6], V_SRC)
    tgt_in = ragged_ids(rng, [5, 3, 1, 6, 2], V_TGT, first=BOS)
    return src, tgt_in


@pytest.fixture(scope="module")
def models():
    """One model per (config key, backend), built once; each test imports weights into it."""
    built = {}
    for key, config in CONFIGS.items():
        for name in BACKENDS:
            module = backend(name)
            built[key, name] = (module, module.build_model(config, seed=0))
    return built


def _comparisons(module, model, config, weights, handoff, src, tgt_in, truth):
    """Load ``weights``, run the backend, and compare with the reference's ``truth``."""
    module.import_weights(model, weights)
    h, c = module.encode(model, src)  # each (L, B, H_dec)
    logits, _ = module.decode(model, tgt_in, handoff(h, c))  # (B, T, V_tgt)
    (h_ref, c_ref), logits_ref = truth
    return [
        compare("hand-off h", h, h_ref, STATE_ATOL),
        compare("hand-off c", c, c_ref, STATE_ATOL),
        compare("logits", logits, logits_ref, LOGITS_ATOL, mask=tgt_in != PAD),
    ]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_parity_flags_the_porting_bug(models, batch, mutation, backend_name):
    key, mutate_weights, mutate_handoff = MUTATIONS[mutation]
    config = CONFIGS[key]
    module, model = models[key, backend_name]
    src, tgt_in = batch
    weights = random_weights(config, seed=5)
    handoff_ref = reference.encode(weights, config, src)  # (h, c), each (L, B, H_dec)
    truth = (handoff_ref, reference.decode(weights, config, tgt_in, handoff_ref)[0])

    correct = _comparisons(module, model, config, weights, lambda h, c: (h, c), src, tgt_in, truth)
    assert all(c.ok for c in correct), "the correct port must pass: " + "; ".join(map(str, correct))

    mutated = weights if mutate_weights is None else mutate_weights(weights, config)
    if mutate_weights is not None:
        changed = [name for name in weights if not np.array_equal(weights[name], mutated[name])]
        assert changed, f"{mutation} left every weight as it was"
    handoff = mutate_handoff or (lambda h, c: (h, c))
    found = _comparisons(module, model, config, mutated, handoff, src, tgt_in, truth)
    assert not all(c.ok for c in found), (
        f"{backend_name}: the porting bug {mutation!r} passed the parity comparison unnoticed: "
        + "; ".join(map(str, found))
    )
