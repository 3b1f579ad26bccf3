"""The canonical layout: names, shapes, split and join, strict weight checks, random weights.

Shape legend: E embedding, H hidden, L layers, D directions, V vocabulary.
"""

import re

import numpy as np
import pytest

from shared import layout
from shared.core.config import Seq2SeqConfig
from tests.peers import Peer
from tests.refusal import refusal


def test_layer_prefix():
    assert layout.layer_prefix("encoder", 0) == "encoder.layers.0.forward"
    assert layout.layer_prefix("encoder", 2, "backward") == "encoder.layers.2.backward"
    assert layout.layer_prefix("decoder", 1) == "decoder.layers.1.forward"
    for args, message in (
        (("middle", 0), "side must be"),
        (("encoder", -1), "layer must be"),
        (("encoder", 0, "sideways"), "direction must be"),
        (("decoder", 0, "backward"), "one-directional"),
    ):
        with pytest.raises(ValueError, match=message):
            layout.layer_prefix(*args)


def test_split_join_round_trip(rng):
    arrays = Peer("torch", "lstm").random_arrays(rng, 3, 5)
    pieces = layout.split_gates("encoder.layers.1.backward", *arrays)
    names = [
        f"encoder.layers.1.backward.{g}.{p}"
        for g in "ifgo"
        for p in ("W_ih", "W_hh", "b_ih", "b_hh")
    ]
    assert list(pieces) == names
    assert pieces["encoder.layers.1.backward.g.W_ih"].shape == (5, 3)
    np.testing.assert_array_equal(pieces["encoder.layers.1.backward.g.W_hh"], arrays[1][10:15])
    assert all(p.dtype == np.float32 for p in pieces.values())
    for back, original in zip(
        layout.join_gates(pieces, "encoder.layers.1.backward"), arrays, strict=True
    ):
        np.testing.assert_array_equal(back, original)
    del pieces["encoder.layers.1.backward.o.b_hh"]
    with pytest.raises(ValueError, match=r"'encoder\.layers\.1\.backward\.o\.b_hh'"):
        layout.join_gates(pieces, "encoder.layers.1.backward")


CONFIGS = [
    Seq2SeqConfig(11, 13, 5, 4),
    Seq2SeqConfig(11, 13, 5, 4, num_layers=3, bidirectional=True),
    Seq2SeqConfig(7, 9, 6, 3, num_layers=2, bidirectional=False),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_canonical_layout_covers_an_equivalent_torch_model_exactly(config):
    import torch

    encoder = torch.nn.LSTM(
        config.embedding_dim,
        config.hidden_size,
        config.num_layers,
        bidirectional=config.bidirectional,
    )
    decoder = torch.nn.LSTM(config.embedding_dim, config.decoder_hidden_size, config.num_layers)
    modules = [
        torch.nn.Embedding(config.src_vocab_size, config.embedding_dim),
        encoder,
        torch.nn.Embedding(config.tgt_vocab_size, config.embedding_dim),
        decoder,
        torch.nn.Linear(config.decoder_hidden_size, config.tgt_vocab_size),
    ]
    shapes = layout.canonical_shapes(config)
    assert sum(int(np.prod(s)) for s in shapes.values()) == sum(
        p.numel() for m in modules for p in m.parameters()
    )
    # Every torch LSTM tensor lands on canonical names of the right shapes, and
    # together they cover every canonical LSTM name exactly once.
    covered = {}
    for side, lstm in (("encoder", encoder), ("decoder", decoder)):
        for k in range(config.num_layers):
            directions = ("forward", "backward") if lstm.bidirectional else ("forward",)
            for direction in directions:
                suffix = f"l{k}" + ("_reverse" if direction == "backward" else "")
                arrays = [
                    getattr(lstm, f"{name}_{suffix}").detach().numpy()
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ]
                pieces = layout.split_gates(layout.layer_prefix(side, k, direction), *arrays)
                assert not covered.keys() & pieces.keys()
                covered.update({name: p.shape for name, p in pieces.items()})
    lstm_names = {name: s for name, s in shapes.items() if ".layers." in name}
    assert covered == lstm_names
    assert next(iter(shapes)) == "encoder.embedding"
    assert list(shapes)[-2:] == ["decoder.output.W", "decoder.output.b"]
    assert shapes["decoder.output.W"] == (config.tgt_vocab_size, config.decoder_hidden_size)


def test_canonical_order_is_encoder_then_decoder():
    config = Seq2SeqConfig(11, 13, 5, 4, num_layers=2, bidirectional=True)
    names = list(layout.canonical_shapes(config))
    assert names[:3] == [
        "encoder.embedding",
        "encoder.layers.0.forward.i.W_ih",
        "encoder.layers.0.forward.i.W_hh",
    ]
    assert names.index("encoder.layers.0.backward.i.W_ih") == 1 + 16
    assert names.index("encoder.layers.1.forward.i.W_ih") == 1 + 32
    assert names.index("decoder.embedding") == 1 + 64
    assert names.index("decoder.layers.1.forward.o.b_hh") == len(names) - 3
    assert layout.canonical_shapes(config)["encoder.layers.1.backward.f.W_ih"] == (4, 8)


def test_random_weights(rng):
    config = CONFIGS[1]
    weights = layout.random_weights(config, seed=3)
    assert layout.check_weights(weights, config).keys() == weights.keys()
    assert all(w.dtype == np.float32 for w in weights.values())
    for name, other in layout.random_weights(config, seed=3).items():
        np.testing.assert_array_equal(other, weights[name])
    assert (
        np.abs(
            layout.random_weights(config, seed=4)["decoder.output.b"] - weights["decoder.output.b"]
        ).max()
        > 0
    )
    prefix = "decoder.layers.2.forward"
    for gate in "ifgo":
        assert np.all(weights[f"{prefix}.{gate}.b_ih"] != 0)
        assert np.all(weights[f"{prefix}.{gate}.b_ih"] != weights[f"{prefix}.{gate}.b_hh"])
    assert np.all(weights[f"{prefix}.i.W_hh"] != weights[f"{prefix}.f.W_hh"])
    assert layout.count_parameters(weights) == sum(
        int(np.prod(s)) for s in layout.canonical_shapes(config).values()
    )


def test_check_weights_returns_float32_copies_in_canonical_order():
    config = CONFIGS[0]
    weights = layout.random_weights(config)
    given = {name: np.asfortranarray(w, np.float64) for name, w in reversed(weights.items())}
    checked = layout.check_weights(given, config)
    assert list(checked) == list(layout.canonical_shapes(config))
    for name, array in checked.items():
        assert array.dtype == np.float32 and array.flags.c_contiguous, name
        assert not np.shares_memory(array, given[name]), name
        np.testing.assert_array_equal(array, weights[name])


def _without(*names):
    return lambda weights: {k: v for k, v in weights.items() if k not in names}


def _with(name, value):
    return lambda weights: {**weights, name: value}


def _poisoned(value):
    """Weights with ``value`` at (1, 2) of the first encoder kernel."""
    def change(weights):
        name = "encoder.layers.0.forward.i.W_ih"
        poisoned = weights[name].copy()
        poisoned[1, 2] = value
        return {**weights, name: poisoned}
    return change


_NAMES = list(layout.canonical_shapes(Seq2SeqConfig(11, 12, 5, 4)))
# Each change to good weights, the exception and a pattern its message must match.
BAD_WEIGHTS = {
    "a-list": (lambda w: list(w.values()), TypeError, "must be a mapping"),
    "one-missing": (_without("decoder.output.b"), ValueError, r"1 missing: decoder\.output\.b"),
    "eight-missing": (_without(*_NAMES[1:9]), ValueError,
                      r"8 missing: encoder\.layers\.0\.forward\.i\.W_ih, .*\(3 more\)"),
    "unexpected": (_with("extra", np.zeros(1)), ValueError, r"1 unexpected: 'extra'"),
    "wrong-shape": (_with("decoder.output.W", np.zeros((5, 8))), ValueError,
                    r"^decoder\.output\.W has shape \(5, 8\); expected \(12, 4\) for this "
                    r"config$"),
    **{f"holds-{value}": (_poisoned(value), ValueError,
                          r"^encoder\.layers\.0\.forward\.i\.W_ih holds NaN/inf \(1 of")
       for value in (np.nan, np.inf, -np.inf)},
    "strings": (_with("decoder.output.b", np.array(["a"] * 12)), ValueError, "real numbers"),
    "complex": (_with("decoder.output.b", np.zeros(12, complex)), ValueError, "real numbers"),
    "beyond-float32": (_with("decoder.output.b", np.full(12, 1e39)), ValueError,
                       "beyond float32's range"),
}


@pytest.mark.parametrize("bad", list(BAD_WEIGHTS))
def test_check_weights_rejects_bad_input(bad):
    config = Seq2SeqConfig(11, 12, 5, 4)
    change, kind, pattern = BAD_WEIGHTS[bad]
    given = change(layout.random_weights(config))
    message = refusal(lambda: layout.check_weights(given, config), kind)
    assert re.search(pattern, message), f"{bad}: {pattern!r} does not match {message!r}"
