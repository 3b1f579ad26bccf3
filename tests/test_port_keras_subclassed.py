"""``seq2seq-rosetta port`` from subclassed Keras 3 models, read by their weights' structure.

A seq2seq written as TensorFlow's translation tutorial writes one (an ``Encoder``
and a ``Decoder`` layer, each holding an Embedding and a GRU, in a subclassed
``keras.Model``) is saved by real Keras as ``.keras`` and as ``.weights.h5``;
its config lists no layers, so port tells each layer by what its group holds.
The printed PyTorch modules, loaded with ``torch_impl.load_ported``, give the
Keras model's own outputs; the Keras port loads back into a fresh instance of
the same subclassed model (``keras_impl.load_ported`` walks its custom layers).
A decoder with a MultiHeadAttention is refused whole, or ported ``--partial``.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
V vocabulary.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from tests.port_support import LENGTHS, padded_ids, ported, refused_port, torch_tree

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
import keras_impl  # noqa: E402
import torch_impl  # noqa: E402

V_SRC, V_TGT, E, H = 11, 9, 4, 5


class Encoder(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(V_SRC, E)
        self.gru = keras.layers.GRU(H, return_sequences=True, return_state=True)

    def call(self, ids):                                     # (B, S) -> (B, S, H), (B, H)
        return self.gru(self.embedding(ids), mask=keras.ops.not_equal(ids, 0))


class Decoder(keras.layers.Layer):
    def __init__(self, attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(V_TGT, E)
        self.gru = keras.layers.GRU(H, return_sequences=True)
        self.attention = keras.layers.MultiHeadAttention(2, 3) if attention else None
        self.fc = keras.layers.Dense(V_TGT)

    def call(self, ids, state, memory):                      # (B, T) -> logits (B, T, V)
        y = self.gru(self.embedding(ids), initial_state=[state], mask=keras.ops.not_equal(ids, 0))
        if self.attention is not None:
            y = y + self.attention(y, memory)
        return self.fc(y)


class Translator(keras.Model):
    def __init__(self, attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Encoder()
        self.decoder = Decoder(attention)

    def call(self, inputs):
        src, tgt = inputs
        memory, state = self.encoder(src)
        return self.decoder(tgt, state, memory)


def built(attention: bool, seed: int):
    """A Translator with every weight random and different."""
    model = Translator(attention)
    rng = np.random.default_rng(seed)
    model([padded_ids(rng, V_SRC), padded_ids(rng, V_TGT)])
    for variable in model.weights:
        variable.assign(rng.uniform(-0.5, 0.5, variable.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    model = built(attention=False, seed=0)
    folder = tmp_path_factory.mktemp("subclassed")
    model.save(folder / "translator.keras")
    model.save_weights(folder / "translator.weights.h5")
    rng = np.random.default_rng(1)
    batch = [padded_ids(rng, V_SRC), padded_ids(rng, V_TGT)]
    return model, folder, batch, keras.ops.convert_to_numpy(model(batch))


@pytest.mark.parametrize("saved_as", ["translator.keras", "translator.weights.h5"])
def test_subclassed_model_ported_to_torch_gives_its_logits(translator, saved_as, tmp_path, capsys):
    _, folder, (src, tgt), expected = translator
    dst = tmp_path / "translator.safetensors"
    report = ported(capsys, folder / saved_as, "--to", "torch", "--out", dst, "--check", lines=(
        "identified by its saved structure and weight shapes",
        "Keras's defaults (tanh, sigmoid) are assumed",
        "Keras GRU (by its structure), 4 -> 5",
        "encoder.gru = nn.GRU(4, 5, batch_first=True)",
        "decoder.fc = nn.Linear(5, 9)", "5 of 5 layers within 1e-05"))

    tree = torch_tree(report)
    torch_impl.load_ported(tree, dst)
    from torch.nn.utils.rnn import pack_padded_sequence

    lengths = torch.from_numpy(LENGTHS)
    with torch.no_grad():
        packed = pack_padded_sequence(tree.encoder.embedding(torch.from_numpy(src)), lengths,
                                      batch_first=True, enforce_sorted=False)
        _, state = tree.encoder.gru(packed)                              # (1, B, H)
        y, _ = tree.decoder.gru(tree.decoder.embedding(torch.from_numpy(tgt)), state)
        logits = tree.decoder.fc(y).numpy()                              # (B, T, V)
    real = np.arange(max(LENGTHS)) < LENGTHS[:, None]
    assert_close("subclassed Translator logits, ported to PyTorch", logits[real], expected[real],
                 STATE_ATOL)


def test_a_lone_table_is_an_embedding_unless_linear_names_it(translator):
    from shared import port

    _, folder, _, _ = translator
    path = folder / "translator.weights.h5"
    kinds = {layer.name: type(layer).__name__ for layer in port.read(path).layers}
    assert kinds["encoder.embedding"] == "Embedding"
    read = port.read(path, linear=("encoder.embedding",))
    layer = next(layer for layer in read.layers if layer.name == "encoder.embedding")
    assert (type(layer).__name__, layer.bias) == ("Dense", None)
    with pytest.raises(port.PortError, match=r"--linear 'encoder\.nothing' names no layer"):
        port.read(path, linear=("encoder.nothing",))


def test_keras_port_loads_into_the_subclassed_model_through_its_custom_layers(
    translator, tmp_path, capsys
):
    model, folder, batch, expected = translator
    dst = tmp_path / "translator_keras.safetensors"
    report = ported(capsys, folder / "translator.keras", "--to", "keras", "--out", dst, "--check")
    assert 'encoder_gru = keras.layers.GRU(5, name="encoder_gru")' in report
    rng = np.random.default_rng(7)
    for variable in model.weights:  # other weights, as a fresh instance would have
        variable.assign(rng.uniform(-0.5, 0.5, variable.shape).astype(np.float32))
    assert keras_impl.load_ported(model, dst) == []
    assert_close("Translator logits after load_ported", keras.ops.convert_to_numpy(model(batch)),
                 expected, STATE_ATOL)


def test_multi_head_attention_is_refused_whole_or_skipped_with_partial(tmp_path, capsys):
    model = built(attention=True, seed=2)
    path = tmp_path / "attending.keras"
    model.save(path)
    err = refused_port(capsys, path, "--to", "torch", "--out", tmp_path / "x.safetensors")
    assert "'decoder.attention' (Keras MultiHeadAttention (by its structure) is a layer" in err
    assert "--partial ports the other layers" in err
    err = refused_port(capsys, path, "--to", "torch", "--out", tmp_path / "x.pt", "--partial")
    assert ("--partial skips 1 layer and lists them in DST's metadata, which a .pt file cannot "
            "hold; write DST as .safetensors") in err
    assert not (tmp_path / "x.pt").exists()

    dst = tmp_path / "partial.safetensors"
    report = ported(capsys, path, "--to", "keras", "--out", dst, "--partial", "--check")
    count = model.decoder.attention.count_params()
    assert (f"skipped (--partial): 'decoder.attention' (Keras MultiHeadAttention (by its "
            f"structure), {count} parameters)") in report
    assert "5 of 5 layers within 1e-05" in report
    from safetensors import safe_open

    with safe_open(dst, "np") as file:
        skipped = json.loads(file.metadata()["skipped"])
    assert [(s["name"], s["parameters"]) for s in skipped] == [("decoder.attention", count)]

    fc = [w.copy() for w in model.decoder.fc.get_weights()]
    model.decoder.fc.set_weights([np.zeros_like(w) for w in fc])
    attention = [w + 1.0 for w in model.decoder.attention.get_weights()]  # the user's own
    model.decoder.attention.set_weights(attention)
    assert keras_impl.load_ported(model, dst) == ["decoder_attention"]
    for kept, now in zip(attention, model.decoder.attention.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)  # left alone: the port skipped it
    for written, now in zip(fc, model.decoder.fc.get_weights(), strict=True):
        np.testing.assert_array_equal(written, now)
