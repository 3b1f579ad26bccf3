"""``seq2seq-rosetta port`` from Keras files, written by real Keras in the tests.

The keras-io character-level seq2seq (one-hot input, an encoder LSTM whose
[h, c] is the decoder's initial_state, a softmax Dense), saved as ``.keras`` and
as legacy ``.h5``, is ported to PyTorch; the modules the report prints, built as
printed and loaded with ``torch_impl.load_ported``, give keras-io's predictions.
A GRU model goes the same way.  Then the refusals: layers PyTorch cannot
compute, a ``Lambda`` layer (whose code must never run: a canary says so), a
custom class and an unknown layer.  Tiny models, random asymmetric weights.

Shape legend: B batch, S source length, T target length, H hidden, V vocabulary.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from tests.port_support import run_port, torch_tree

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
import torch_impl  # noqa: E402

V_ENC, V_DEC, H = 7, 9, 6  # keras-io's num_encoder_tokens, num_decoder_tokens, latent_dim
B, S, T = 3, 6, 5


def randomise(model, seed: int) -> None:
    """Every weight random and different: a swapped gate or a lost bias changes the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                           for w in layer.get_weights()])


def one_hot(rng, shape, depth) -> np.ndarray:
    return np.eye(depth, dtype=np.float32)[rng.integers(0, depth, shape)]


@pytest.fixture(scope="module")
def keras_io(tmp_path_factory):
    """keras-io's training model with random weights, saved as .keras and .h5."""
    encoder_inputs = keras.Input(shape=(None, V_ENC))                       # (B, S, V_enc)
    _, state_h, state_c = keras.layers.LSTM(H, return_state=True, name="encoder")(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, V_DEC))                       # (B, T, V_dec)
    decoder_lstm = keras.layers.LSTM(H, return_sequences=True, return_state=True,
                                     name="decoder_lstm")
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=[state_h, state_c])
    dense = keras.layers.Dense(V_DEC, activation="softmax", name="decoder_dense")
    model = keras.Model([encoder_inputs, decoder_inputs], dense(decoder_outputs))
    randomise(model, seed=1)
    folder = tmp_path_factory.mktemp("keras_io")
    model.save(folder / "s2s_model.keras")
    model.save(folder / "s2s_model.h5")
    return model, folder


@pytest.mark.parametrize("saved_as", ["s2s_model.keras", "s2s_model.h5"])
def test_keras_io_char_seq2seq_ported_to_torch_predicts_as_keras_io(keras_io, saved_as, capsys):
    model, folder = keras_io
    dst = folder / f"{saved_as}.safetensors"
    code, report, err = run_port(capsys, folder / saved_as, "--to", "torch", "--out", dst,
                                 "--check")
    assert (code, err) == (0, ""), report + err
    for line in ("encoder = nn.LSTM(7, 6, batch_first=True)",
                 "decoder_lstm = nn.LSTM(9, 6, batch_first=True)",
                 "decoder_dense = nn.Linear(6, 9)", "activation='softmax'",
                 "3 of 3 layers within 1e-05"):
        assert line in report, f"{line!r} not in the report:\n{report}"

    tree = torch_tree(report)  # the printed modules, built as printed
    torch_impl.load_ported(tree, dst)
    rng = np.random.default_rng(2)
    encoder_input, decoder_input = one_hot(rng, (B, S), V_ENC), one_hot(rng, (B, T), V_DEC)
    expected = keras.ops.convert_to_numpy(model([encoder_input, decoder_input]))  # (B, T, V)
    with torch.no_grad():
        _, state = tree.encoder(torch.from_numpy(encoder_input))            # (h, c): (1, B, H)
        outputs, _ = tree.decoder_lstm(torch.from_numpy(decoder_input), state)
        probabilities = torch.softmax(tree.decoder_dense(outputs), dim=-1).numpy()
    assert_close("keras-io probabilities, ported to PyTorch", probabilities, expected, STATE_ATOL)


@pytest.fixture(scope="module")
def gru_model(tmp_path_factory):
    """Embedding -> Bidirectional(GRU) -> GRU -> Dense, every GRU reset_after=True."""
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(11, 4, name="embed")(ids)
    x = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True), name="bigru")(x)
    x = keras.layers.GRU(5, return_sequences=True, name="gru")(x)
    model = keras.Model(ids, keras.layers.Dense(8, name="logits")(x))
    randomise(model, seed=3)
    path = tmp_path_factory.mktemp("gru") / "gru.keras"
    model.save(path)
    return model, path


def test_keras_gru_model_ported_to_torch_runs_as_in_keras(gru_model, capsys):
    model, path = gru_model
    dst = path.with_suffix(".pt")
    code, report, err = run_port(capsys, path, "--to", "torch", "--out", dst, "--check")
    assert (code, err) == (0, ""), report + err
    assert "bigru = nn.GRU(4, 3, bidirectional=True, batch_first=True)" in report
    tree = torch_tree(report)
    tree.load_state_dict(torch.load(dst, weights_only=True), strict=True)
    ids = np.random.default_rng(4).integers(0, 11, (B, S))
    with torch.no_grad():
        x = tree.embed(torch.from_numpy(ids))
        x, _ = tree.bigru(x)
        x, _ = tree.gru(x)
        logits = tree.logits(x).numpy()
    expected = keras.ops.convert_to_numpy(model(ids))
    assert_close("GRU model logits, ported to PyTorch", logits, expected, STATE_ATOL)


def test_what_pytorch_cannot_compute_is_refused_in_one_line_and_ported_to_keras(tmp_path, capsys):
    inputs = keras.Input(shape=(None, 3))
    x = keras.layers.GRU(4, reset_after=False, return_sequences=True, name="old_gru")(inputs)
    x = keras.layers.LSTM(4, recurrent_activation="hard_sigmoid", name="hard")(x)
    model = keras.Model(inputs, x)
    randomise(model, seed=5)
    path = tmp_path / "keras2_style.keras"
    model.save(path)

    code, out, err = run_port(capsys, path, "--to", "torch", "--out", tmp_path / "x.pt")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "2 layers cannot be expressed" in err
    assert "'old_gru' (Keras GRU is a GRU that resets before the recurrent product" in err
    assert "'hard' (Keras LSTM uses recurrent_activation='hard_sigmoid'" in err
    assert not (tmp_path / "x.pt").exists()

    dst = tmp_path / "keras2_style.safetensors"
    code, report, err = run_port(capsys, path, "--to", "keras", "--out", dst, "--check")
    assert (code, err) == (0, ""), report + err
    assert "keras.layers.GRU(4, reset_after=False" in report
    assert "recurrent_activation='hard_sigmoid'" in report


def test_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path, capsys):
    canary = tmp_path / "canary"

    def payload(path):
        # Keras stores this lambda's bytecode and its closure (the path) in config.json.
        return lambda x: (__import__("pathlib").Path(path).mkdir(), x)[1]

    inputs = keras.Input(shape=(None, 3))
    x = keras.layers.Lambda(payload(str(canary)), name="lambda_payload")(inputs)
    model = keras.Model(inputs, keras.layers.LSTM(2, name="lstm")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    assert canary.is_dir(), "the payload is live: building the model ran it"
    canary.rmdir()
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    stored = json.dumps(config)
    assert '"class_name": "Lambda"' in stored and "__lambda__" in stored  # bytecode inside

    code, out, err = run_port(capsys, path, "--to", "torch", "--out", tmp_path / "x.pt",
                              "--check")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "'lambda_payload' (Keras Lambda holds Python code, which port never runs" in err
    assert not canary.exists(), "port ran the Lambda's code"


def test_custom_and_unknown_layers_are_refused_by_name(tmp_path, capsys):
    @keras.saving.register_keras_serializable(package="user")
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), name="scale")

        def call(self, x):
            return x * self.scale

    inputs = keras.Input(shape=(6, 3))
    x = Scale(name="scale")(inputs)
    x = keras.layers.Conv1D(2, 3, name="conv")(x)
    model = keras.Model(inputs, keras.layers.LSTM(2, name="lstm")(x))
    path = tmp_path / "custom.keras"
    model.save(path)
    code, out, err = run_port(capsys, path, "--to", "keras", "--out", tmp_path / "x.safetensors")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "2 layers cannot be expressed" in err
    assert "'scale' (Keras Scale is a custom class (" in err
    assert "'conv' (Keras Conv1D is a layer type with weights that port does not know)" in err
