"""``seq2seq-rosetta port`` from PyTorch state_dicts, written by real PyTorch in the tests.

A seq2seq in the style of bentrevett's first notebook (Embedding,
``nn.LSTM(num_layers=2)``, ``fc_out``) is saved with ``torch.save`` and ported
to Keras; a Keras model built from the printed layers and loaded with
``keras_impl.load_ported`` gives the same hand-off and logits.  A bidirectional
GRU goes the same way from ``.safetensors``.  Then the refusals (``proj_size``,
a module port does not know, a pickle that would run code) and
``load_ported``'s strictness, word for word the same in both frameworks.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
L layers, V vocabulary.
"""

from __future__ import annotations

import pickletools
import struct

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from shared.port import PortError
from tests.port_support import keras_layers, randomised, run_port

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from torch import nn  # noqa: E402

import keras_impl  # noqa: E402
import torch_impl  # noqa: E402

V_SRC, V_TGT, E, H, L = 11, 9, 4, 5, 2
B, S, T = 3, 6, 4


class Encoder(nn.Module):  # bentrevett's, without dropout
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V_SRC, E)
        self.rnn = nn.LSTM(E, H, L)

    def forward(self, src):                                  # (S, B): PyTorch's default layout
        _, (hidden, cell) = self.rnn(self.embedding(src))    # each (L, B, H)
        return hidden, cell


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V_TGT, E)
        self.rnn = nn.LSTM(E, H, L)
        self.fc_out = nn.Linear(H, V_TGT)

    def forward(self, tgt, hidden, cell):                    # (T, B): teacher forcing
        output, _ = self.rnn(self.embedding(tgt), (hidden, cell))
        return self.fc_out(output)                            # (T, B, V_tgt)


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = Encoder(), Decoder()


@pytest.fixture(scope="module")
def bentrevett(tmp_path_factory):
    model = randomised(Seq2Seq(), seed=0)
    path = tmp_path_factory.mktemp("bentrevett") / "tut1-model.pt"
    torch.save(model.state_dict(), path)
    return model, path


def keras_seq2seq(layers: dict):
    """The same model in Keras, from the printed layers (names encoder_rnn_l0, ...)."""
    src, tgt = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    x, states = layers["encoder_embedding"](src), []
    for k in range(L):
        x, h, c = layers[f"encoder_rnn_l{k}"](x)
        states.append([h, c])
    y = layers["decoder_embedding"](tgt)
    for k in range(L):
        y, _, _ = layers[f"decoder_rnn_l{k}"](y, initial_state=states[k])
    return keras.Model([src, tgt], [layers["decoder_fc_out"](y), *states[-1]])


def test_bentrevett_state_dict_ported_to_keras_gives_the_same_handoff_and_logits(
    bentrevett, capsys
):
    model, path = bentrevett
    dst = path.with_suffix(".safetensors")
    code, report, err = run_port(capsys, path, "--to", "keras", "--out", dst, "--check")
    assert (code, err) == (0, ""), report + err
    for line in ('encoder_rnn_l0 = keras.layers.LSTM(5, name="encoder_rnn_l0")',
                 'encoder_rnn_l1 = keras.layers.LSTM(5, name="encoder_rnn_l1")',
                 'decoder_fc_out = keras.layers.Dense(9, name="decoder_fc_out")',
                 "5 of 5 layers within 1e-05"):
        assert line in report, f"{line!r} not in the report:\n{report}"

    keras_model = keras_seq2seq(keras_layers(report, return_sequences=True, return_state=True))
    keras_impl.load_ported(keras_model, dst)
    rng = np.random.default_rng(1)
    src, tgt = rng.integers(0, V_SRC, (B, S)), rng.integers(0, V_TGT, (B, T))
    logits, h, c = (keras.ops.convert_to_numpy(a) for a in keras_model([src, tgt]))
    with torch.no_grad():
        hidden, cell = model.encoder(torch.from_numpy(src.T))      # each (L, B, H)
        expected = model.decoder(torch.from_numpy(tgt.T), hidden, cell).numpy()  # (T, B, V)
    assert_close("hand-off h (top layer)", h, hidden[-1].numpy(), STATE_ATOL)
    assert_close("hand-off c (top layer)", c, cell[-1].numpy(), STATE_ATOL)
    assert_close("teacher-forced logits", logits, expected.transpose(1, 0, 2), STATE_ATOL)


def test_bidirectional_gru_state_dict_from_safetensors_runs_in_keras(tmp_path, capsys):
    from safetensors.torch import save_file

    module = nn.Module()
    module.rnn = nn.GRU(3, 4, bidirectional=True, batch_first=True)
    randomised(module, seed=2)
    path = tmp_path / "gru.safetensors"
    save_file(module.state_dict(), path)
    dst = tmp_path / "gru_keras.safetensors"
    code, report, err = run_port(capsys, path, "--to", "keras", "--out", dst, "--check")
    assert (code, err) == (0, ""), report + err
    assert 'rnn_l0 = keras.layers.Bidirectional(keras.layers.GRU(4), name="rnn_l0")' in report

    layer = keras_layers(report, return_sequences=True)["rnn_l0"]
    model = keras.Sequential([keras.Input((None, 3)), layer])
    keras_impl.load_ported(model, dst)
    x = np.random.default_rng(3).normal(size=(B, S, 3)).astype(np.float32)
    with torch.no_grad():
        expected, _ = module.rnn(torch.from_numpy(x))                # (B, S, 2H)
    assert_close("bidirectional GRU outputs", keras.ops.convert_to_numpy(model(x)),
                 expected.numpy(), STATE_ATOL)


def test_lone_weights_are_embeddings_unless_linear_names_them(tmp_path, capsys):
    module = nn.Module()
    module.table, module.project = nn.Embedding(6, 3), nn.Linear(3, 2, bias=False)
    path = tmp_path / "lone.pth"
    torch.save(randomised(module, seed=4).state_dict(), path)
    code, report, _ = run_port(capsys, path, "--to", "torch", "--out", tmp_path / "a.pt")
    assert code == 0 and "project = nn.Embedding(2, 3)" in report  # a guess, said in the report
    code, report, err = run_port(capsys, path, "--to", "torch", "--out", tmp_path / "b.pt",
                                 "--linear", "project", "--check")
    assert (code, err) == (0, ""), report + err
    assert "project = nn.Linear(3, 2, bias=False)" in report


def test_proj_size_and_unknown_modules_are_refused_in_one_line(tmp_path, capsys):
    module = nn.Module()
    module.rnn = nn.LSTM(3, 4, proj_size=2)
    module.norm = nn.LayerNorm(4)
    path = tmp_path / "proj.pt"
    torch.save(module.state_dict(), path)
    for target in ("torch", "keras"):
        dst = tmp_path / f"out_{target}.safetensors"
        code, out, err = run_port(capsys, path, "--to", target, "--out", dst)
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert "'rnn' (nn.LSTM projects h to a smaller width (proj_size=2)" in err
        assert "'norm' (PyTorch module with weight (4,), bias (4,) is a layer type" in err
        assert not dst.exists()


def test_a_pickle_with_a_payload_is_refused_and_never_runs(tmp_path, capsys):
    canary = tmp_path / "canary"
    # A pickle that calls os.mkdir(canary) when loaded, written opcode by opcode.
    text = str(canary).encode()
    payload = (b"\x80\x02cos\nmkdir\nX" + struct.pack("<I", len(text)) + text + b"\x85R.")
    globals_called = [arg for op, arg, _ in pickletools.genops(payload) if op.name == "GLOBAL"]
    assert globals_called == ["os mkdir"]  # what it would run, read without running it
    path = tmp_path / "model.pt"
    path.write_bytes(payload)
    code, out, err = run_port(capsys, path, "--to", "keras", "--out", tmp_path / "x.safetensors")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "torch.load(weights_only=True) refused it" in err and "mkdir" in err
    assert not canary.exists(), "the pickle's payload ran"


def test_load_ported_is_strict_both_ways_with_the_same_words_in_both_frameworks(tmp_path):
    module = nn.Module()
    module.rnn, module.out = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 2)
    path = tmp_path / "small.pt"
    torch.save(randomised(module, seed=5).state_dict(), path)
    from shared import port

    port.port(path, "torch", tmp_path / "t.safetensors")
    port.port(path, "keras", tmp_path / "k.safetensors")

    wrong = nn.Module()
    wrong.rnn, wrong.head = nn.LSTM(3, 5, batch_first=True), nn.Linear(5, 2)
    with pytest.raises(PortError) as torch_error:
        torch_impl.load_ported(wrong, tmp_path / "t.safetensors")
    x = keras.Input((None, 3))
    keras_wrong = keras.Model(x, keras.layers.Dense(2, name="head")(
        keras.layers.LSTM(5, name="rnn_l0")(x)))
    with pytest.raises(PortError) as keras_error:
        keras_impl.load_ported(keras_wrong, tmp_path / "k.safetensors")
    for error, layer, weight in ((torch_error, "rnn", "weight_hh_l0"),
                                 (keras_error, "rnn_l0", "recurrent_kernel")):
        message = str(error.value)
        assert "nothing loaded" in message
        assert "layer 'out' is in the file but the model has no layer with weights" in message
        assert "the model's layer 'head' has weights but the file has none for it" in message
        assert f"layer '{layer}' {weight} has shape" in message
    with pytest.raises(PortError, match="was written for keras"):
        torch_impl.load_ported(module, tmp_path / "k.safetensors")

    torch_impl.load_ported(module, tmp_path / "t.safetensors")  # the right model loads
