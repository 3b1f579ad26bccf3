"""``seq2seq-rosetta port`` from Keras 2 ``.h5`` files, written with h5py in Keras 2's layout.

No Keras 2 installs next to Keras 3, so the files are written as Keras 2.2.4's
``save_model`` wrote them (``keras/engine/saving.py``): the attrs
``keras_version``, ``backend``, ``model_config`` (a Functional model's class is
"Model" before Keras 2.4) and ``training_config``; ``model_weights/{layer}/`` with
``weight_names`` such as ``lstm_1/kernel:0``; ``optimizer_weights``.  Random
weights everywhere.  The source's own numbers come from Keras 2's semantics
written out here in NumPy (``keras2_lstm``/``keras2_gru``: its hard_sigmoid,
clip(0.2x + 0.5, 0, 1), was every LSTM's and GRU's default before 2.3), and for
the cuDNN layers from Keras 2's own loader (``_convert_rnn_weights``, which turns
a CuDNNLSTM's weights into an LSTM's) and a real Keras LSTM/GRU: the port's
reading of the layout, the check's (``runners.cudnn``) and this one are three
derivations that must agree.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
V vocabulary.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from shared.port import PortError, read
from tests.port_support import (
    LENGTHS,
    keras_layers,
    padded_ids,
    ported,
    refused_port,
    run_port,
    torch_tree,
)

h5py = pytest.importorskip("h5py")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
import keras_impl  # noqa: E402
import torch_impl  # noqa: E402

V_SRC, V_TGT, E, H = 11, 9, 4, 5
SEED = 23


# ---- Keras 2, as it computed (recurrent.py, implementation=1: one product per gate) ----

def hard_sigmoid(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def keras2_lstm(x, lengths, kernel, recurrent_kernel, bias, state=None, ra=hard_sigmoid):
    """(outputs (B, T, H) at real steps, h, c) of a Keras 2 LSTM: columns i, f, c, o."""
    B, T, _ = x.shape
    K, U, b = (np.split(np.asarray(a, np.float64), 4, axis=-1) for a in (kernel, recurrent_kernel,
                                                                        bias))
    h, c = state if state is not None else (np.zeros((B, U[0].shape[0])),) * 2
    outputs = np.zeros((B, T, h.shape[1]))
    for t in range(T):
        x_t = x[:, t]
        i = ra(x_t @ K[0] + h @ U[0] + b[0])
        f = ra(x_t @ K[1] + h @ U[1] + b[1])
        c_new = f * c + i * np.tanh(x_t @ K[2] + h @ U[2] + b[2])
        o = ra(x_t @ K[3] + h @ U[3] + b[3])
        h_new = o * np.tanh(c_new)
        real = (t < lengths)[:, None]
        h, c = np.where(real, h_new, h), np.where(real, c_new, c)
        outputs[:, t] = np.where(real, h, 0.0)
    return outputs, h, c


def keras2_gru(x, lengths, kernel, recurrent_kernel, bias, reverse=False, ra=hard_sigmoid):
    """(outputs, h) of a Keras 2 GRU, reset_after=False (bias (3H,)): columns z, r, h."""
    if reverse:  # a Bidirectional's backward layer: each row's real steps, last first
        flipped = np.stack([np.concatenate([row[:n][::-1], row[n:]]) for row, n in zip(x, lengths,
                                                                                    strict=True)])
        outputs, h = keras2_gru(flipped, lengths, kernel, recurrent_kernel, bias, ra=ra)
        return np.stack([np.concatenate([row[:n][::-1], row[n:]])
                         for row, n in zip(outputs, lengths, strict=True)]), h
    K, U, b = (np.split(np.asarray(a, np.float64), 3, axis=-1) for a in (kernel, recurrent_kernel,
                                                                        bias))
    B, T, _ = x.shape
    h = np.zeros((B, U[0].shape[0]))
    outputs = np.zeros((B, T, h.shape[1]))
    for t in range(T):
        x_t = x[:, t]
        z = ra(x_t @ K[0] + b[0] + h @ U[0])
        r = ra(x_t @ K[1] + b[1] + h @ U[1])
        candidate = np.tanh(x_t @ K[2] + b[2] + (r * h) @ U[2])
        real = (t < lengths)[:, None]
        h = np.where(real, z * h + (1 - z) * candidate, h)
        outputs[:, t] = np.where(real, h, 0.0)
    return outputs, h


# ---- Keras 2.2.4's file layout ----

def entry(cls: str, name: str, inbound: list, **config) -> dict:
    """One layer of a Keras 2.2.4 model_config, with the keys Keras 2.2.4 wrote."""
    defaults = {
        "LSTM": {"return_sequences": False, "return_state": False, "go_backwards": False,
                 "stateful": False, "unroll": False, "activation": "tanh",
                 "recurrent_activation": "hard_sigmoid", "use_bias": True,
                 "unit_forget_bias": True, "dropout": 0.0, "recurrent_dropout": 0.0,
                 "implementation": 1},
        "GRU": {"return_sequences": False, "return_state": False, "go_backwards": False,
                "stateful": False, "unroll": False, "activation": "tanh",
                "recurrent_activation": "hard_sigmoid", "use_bias": True, "dropout": 0.0,
                "recurrent_dropout": 0.0, "implementation": 1, "reset_after": False},
        "CuDNNLSTM": {"return_sequences": False, "return_state": False, "go_backwards": False,
                      "stateful": False, "unit_forget_bias": True},
        "CuDNNGRU": {"return_sequences": False, "return_state": False, "go_backwards": False,
                     "stateful": False},
        "Dense": {"activation": "linear", "use_bias": True},
        "Embedding": {"input_length": None, "mask_zero": False},
    }.get(cls, {})
    return {"name": name, "class_name": cls,
            "config": {"name": name, "trainable": True, **defaults, **config},
            "inbound_nodes": [[[node, 0, 0, {}] for node in inbound]] if inbound else []}


def write_keras2_h5(path, layers: list[dict], weights: dict, version="2.2.4", cls="Model"):
    """A model.save("x.h5") file of Keras ``version``: ``weights`` {layer: [(name, array)]}."""
    config = {"class_name": cls, "config": {"name": "model_1", "layers": layers,
                                            "input_layers": [], "output_layers": []}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode()
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["training_config"] = json.dumps({"optimizer_config": {"class_name": "Adam"},
                                                 "loss": "categorical_crossentropy"}).encode()
        group = f.create_group("model_weights")
        layers = [layer for layer in layers if isinstance(layer, dict)
                  and isinstance(layer.get("name"), str)]  # a broken config's own layers
        group.attrs["layer_names"] = np.asarray([layer["name"].encode() for layer in layers])
        group.attrs["backend"], group.attrs["keras_version"] = b"tensorflow", version.encode()
        for layer in layers:
            g = group.create_group(layer["name"])
            pairs = weights.get(layer["name"], [])
            g.attrs["weight_names"] = np.asarray([name.encode() for name, _ in pairs])
            for name, array in pairs:
                g.create_dataset(name, data=array)
        optimizer = f.create_group("optimizer_weights")
        optimizer.attrs["weight_names"] = np.asarray([b"Adam/iterations:0"])
        optimizer.create_dataset("Adam/iterations:0", data=np.int64(120))


def random(rng, *shape):
    return rng.uniform(-0.6, 0.6, shape).astype(np.float32)


def recurrent_weights(rng, prefix: str, inputs: int, hidden: int, gates: int, bias: int):
    return [(f"{prefix}/kernel:0", random(rng, inputs, gates * hidden)),
            (f"{prefix}/recurrent_kernel:0", random(rng, hidden, gates * hidden)),
            (f"{prefix}/bias:0", random(rng, bias))]


@pytest.fixture(scope="module")
def keras224(tmp_path_factory):
    """A keras-io-style seq2seq with embeddings, as Keras 2.2.4 saved it: hard_sigmoid LSTMs."""
    rng = np.random.default_rng(SEED)
    layers = [
        entry("InputLayer", "input_1", [], batch_input_shape=[None, None], dtype="float32"),
        entry("InputLayer", "input_2", [], batch_input_shape=[None, None], dtype="float32"),
        entry("Embedding", "embedding_1", ["input_1"], input_dim=V_SRC, output_dim=E,
              mask_zero=True),
        entry("Embedding", "embedding_2", ["input_2"], input_dim=V_TGT, output_dim=E,
              mask_zero=True),
        entry("LSTM", "lstm_1", ["embedding_1"], units=H, return_state=True),
        entry("LSTM", "lstm_2", ["embedding_2", "lstm_1", "lstm_1"], units=H,
              return_sequences=True, return_state=True),
        entry("Dense", "dense_1", ["lstm_2"], units=V_TGT, activation="softmax"),
    ]
    weights = {
        "embedding_1": [("embedding_1/embeddings:0", random(rng, V_SRC, E))],
        "embedding_2": [("embedding_2/embeddings:0", random(rng, V_TGT, E))],
        "lstm_1": recurrent_weights(rng, "lstm_1", E, H, 4, 4 * H),
        "lstm_2": recurrent_weights(rng, "lstm_2", E, H, 4, 4 * H),
        "dense_1": [("dense_1/kernel:0", random(rng, H, V_TGT)),
                    ("dense_1/bias:0", random(rng, V_TGT))],
    }
    path = tmp_path_factory.mktemp("keras224") / "s2s.h5"
    write_keras2_h5(path, layers, weights)
    arrays = {layer: [a for _, a in pairs] for layer, pairs in weights.items()}
    return path, arrays


def keras2_probabilities(arrays, src, tgt):
    """The Keras 2.2.4 model's own output, with Keras 2's semantics: (B, T, V)."""
    _, h, c = keras2_lstm(arrays["embedding_1"][0][src], LENGTHS, *arrays["lstm_1"])
    outputs, _, _ = keras2_lstm(arrays["embedding_2"][0][tgt], LENGTHS, *arrays["lstm_2"],
                                state=(h, c))
    logits = outputs @ arrays["dense_1"][0] + arrays["dense_1"][1]
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def keras_seq2seq(layers: dict):
    """The Keras 2.2.4 model again, in Keras 3, from the printed layers; padding masked."""
    src, tgt = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    src_mask, tgt_mask = keras.ops.not_equal(src, 0), keras.ops.not_equal(tgt, 0)
    _, h, c = layers["lstm_1"](layers["embedding_1"](src), mask=src_mask)
    y, _, _ = layers["lstm_2"](layers["embedding_2"](tgt), initial_state=[h, c], mask=tgt_mask)
    return keras.Model([src, tgt], layers["dense_1"](y))  # printed with activation="softmax"


def test_keras_2_h5_with_hard_sigmoid_ported_to_keras_computes_keras_2s_numbers(
    keras224, tmp_path, capsys
):
    path, arrays = keras224
    dst = tmp_path / "s2s_keras.safetensors"
    report = ported(capsys, path, "--to", "keras", "--out", dst, "--check", lines=(
        "(legacy Keras .h5 model, Keras 2.2.4)",
        "lstm_1 = keras.layers.LSTM(5, "
        "recurrent_activation=keras_impl.keras2_hard_sigmoid",
        "keras 2 (numpy)", "5 of 5 layers within 1e-05"))
    assert "recurrent_activation='hard_sigmoid'" not in report  # Keras 3's: another curve

    model = keras_seq2seq(keras_layers(report, return_sequences=True, return_state=True))
    assert keras_impl.load_ported(model, dst) == []
    rng = np.random.default_rng(1)
    src_ids, tgt_ids = padded_ids(rng, V_SRC), padded_ids(rng, V_TGT)
    expected = keras2_probabilities(arrays, src_ids, tgt_ids)
    got = keras.ops.convert_to_numpy(model([src_ids, tgt_ids]))
    real = np.arange(max(LENGTHS)) < LENGTHS[:, None]
    assert_close("Keras 2.2.4 probabilities, ported to Keras 3", got[real], expected[real],
                 STATE_ATOL)


def test_the_check_fails_when_keras_2s_hard_sigmoid_is_written_as_keras_3s(
    keras224, tmp_path, capsys, monkeypatch
):
    path, _ = keras224
    monkeypatch.setattr("shared.port.activations.KERAS3_DIFFERS", {})  # the old, silent bug
    code, report, _ = run_port(capsys, path, "--to", "keras", "--out",
                               tmp_path / "wrong.safetensors", "--check")
    assert code == 1, report
    assert "recurrent_activation='hard_sigmoid'" in report
    assert "2 of 5 layers over 1e-05: lstm_1, lstm_2" in report


def test_load_ported_refuses_keras_3s_hard_sigmoid_for_keras_2_weights(keras224, tmp_path):
    path, _ = keras224
    from shared import port

    dst = tmp_path / "k.safetensors"
    report = port.port(path, "keras", dst).text()
    layers = keras_layers(report, return_sequences=True, return_state=True)
    wrong = keras.layers.LSTM(H, recurrent_activation="hard_sigmoid", return_sequences=True,
                              return_state=True, name="lstm_1")  # Keras 3's, as once printed
    model = keras_seq2seq({**layers, "lstm_1": wrong})
    before = [w.copy() for w in wrong.get_weights()]
    with pytest.raises(PortError) as error:
        keras_impl.load_ported(model, dst)
    assert ("layer 'lstm_1' computes recurrent_activation=hard_sigmoid but the ported weights "
            "need recurrent_activation=keras2_hard_sigmoid") in str(error.value)
    for kept, now in zip(before, wrong.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)  # nothing loaded


def test_keras2_hard_sigmoid_is_keras_2s_curve():
    x = np.linspace(-4, 4, 81).astype(np.float32)
    got = keras.ops.convert_to_numpy(keras_impl.keras2_hard_sigmoid(x))
    np.testing.assert_allclose(got, hard_sigmoid(x), atol=1e-7)
    assert np.abs(keras.ops.convert_to_numpy(keras.activations.hard_sigmoid(x)) - got).max() > 0.05


def test_keras_2_hard_sigmoid_to_torch_is_refused_by_name_and_partial_ports_the_rest(
    keras224, tmp_path, capsys
):
    path, arrays = keras224
    err = refused_port(capsys, path, "--to", "torch", "--out", tmp_path / "x.pt")
    assert ("'lstm_1' (Keras LSTM uses recurrent_activation='hard_sigmoid' (Keras 2's: "
            "clip(0.2x + 0.5, 0, 1), not Keras 3's); nn.LSTM computes only") in err
    assert "--partial ports the other layers" in err

    dst = tmp_path / "partial.safetensors"
    report = ported(capsys, path, "--to", "torch", "--out", dst, "--partial", "--check")
    assert ("skipped (--partial): 'lstm_1' (Keras LSTM, 200 parameters): uses "
            "recurrent_activation='hard_sigmoid'") in report
    assert "3 of 3 layers within 1e-05" in report
    from safetensors import safe_open

    with safe_open(dst, "np") as file:
        skipped = json.loads(file.metadata()["skipped"])
    assert [(s["name"], s["what"], s["parameters"]) for s in skipped] == [
        ("lstm_1", "Keras LSTM", 200), ("lstm_2", "Keras LSTM", 200)]
    tree = torch_tree(report)
    tree.lstm_1 = torch.nn.LSTM(E, H)  # the user's own modules for what was skipped
    tree.lstm_2 = torch.nn.LSTM(E, H)
    assert torch_impl.load_ported(tree, dst) == ["lstm_1", "lstm_2"]
    np.testing.assert_array_equal(tree.embedding_1.weight.detach().numpy(),
                                  arrays["embedding_1"][0])


@pytest.fixture(scope="module")
def cudnn(tmp_path_factory):
    """A CuDNNLSTM and a Bidirectional(CuDNNGRU), as Keras 2.2.4 saved them."""
    rng = np.random.default_rng(SEED + 1)
    layers = [
        entry("InputLayer", "input_1", [], batch_input_shape=[None, None, E], dtype="float32"),
        entry("CuDNNLSTM", "cu_dnnlstm_1", ["input_1"], units=H, return_sequences=True),
        {**entry("Bidirectional", "bidirectional_1", ["cu_dnnlstm_1"], merge_mode="concat"),
         "config": {"name": "bidirectional_1", "trainable": True, "merge_mode": "concat",
                    "layer": entry("CuDNNGRU", "cu_dnngru_1", [], units=3,
                                   return_sequences=True)}},
    ]
    weights = {
        "cu_dnnlstm_1": recurrent_weights(rng, "cu_dnnlstm_1", E, H, 4, 8 * H),
        "bidirectional_1": [
            *recurrent_weights(rng, "bidirectional_1/forward_cu_dnngru_1", H, 3, 3, 6 * 3),
            *recurrent_weights(rng, "bidirectional_1/backward_cu_dnngru_1", H, 3, 3, 6 * 3)],
    }
    path = tmp_path_factory.mktemp("cudnn") / "cudnn.h5"
    write_keras2_h5(path, layers, weights)
    return path, {layer: [a for _, a in pairs] for layer, pairs in weights.items()}


def keras2_loader(kernel, recurrent_kernel, bias, gates: int):
    """Keras 2's ``_convert_rnn_weights`` from a CuDNN layer to an LSTM / GRU(reset_after)."""
    kernel = np.hstack([k.T.reshape(k.shape, order="F") for k in np.hsplit(kernel, gates)])
    recurrent_kernel = np.hstack([k.T for k in np.hsplit(recurrent_kernel, gates)])
    bias = np.sum(np.split(bias, 2), axis=0) if gates == 4 else bias.reshape(2, -1)
    return [kernel, recurrent_kernel, bias]


def test_cudnn_layers_ported_to_torch_compute_what_keras_2s_loader_gives(cudnn, tmp_path, capsys):
    path, arrays = cudnn
    dst = tmp_path / "cudnn.pt"
    report = ported(capsys, path, "--to", "torch", "--out", dst, "--check", lines=(
        "cu_dnnlstm_1 = nn.LSTM(4, 5, batch_first=True)",
        "bidirectional_1 = nn.GRU(5, 3, bidirectional=True, batch_first=True)",
        "cudnn layout (numpy)", "2 of 2 layers within 1e-05"))
    tree = torch_tree(report)
    torch_impl.load_ported(tree, dst)

    x = np.random.default_rng(2).normal(size=(len(LENGTHS), max(LENGTHS), E)).astype(np.float32)
    lstm = keras.layers.LSTM(H, return_sequences=True)  # what Keras 2 loaded a CuDNNLSTM into
    gru = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True, reset_after=True))
    lstm.build((None, None, E))
    gru.build((None, None, H))
    lstm.set_weights(keras2_loader(*arrays["cu_dnnlstm_1"], gates=4))
    gru.set_weights(keras2_loader(*arrays["bidirectional_1"][:3], gates=3)
                    + keras2_loader(*arrays["bidirectional_1"][3:], gates=3))
    mask = np.arange(max(LENGTHS)) < LENGTHS[:, None]
    expected = keras.ops.convert_to_numpy(gru(lstm(x, mask=mask), mask=mask))
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    with torch.no_grad():
        y = torch.from_numpy(x)
        for module in (tree.cu_dnnlstm_1, tree.bidirectional_1):
            packed = pack_padded_sequence(y, torch.from_numpy(LENGTHS), batch_first=True,
                                          enforce_sorted=False)
            y, _ = pad_packed_sequence(module(packed)[0], batch_first=True,
                                       total_length=max(LENGTHS))
    assert_close("CuDNNLSTM -> Bidirectional(CuDNNGRU) outputs", y.numpy()[mask], expected[mask],
                 STATE_ATOL)
    # The recipe docs/porting.md gave before (kernels transposed) is far off: a real bug.
    kernel = arrays["cu_dnnlstm_1"][0]
    assert np.abs(kernel.T - tree.cu_dnnlstm_1.weight_ih_l0.detach().numpy()).max() > 0.1


def test_cudnn_layers_go_to_keras_as_plain_layers(cudnn, tmp_path, capsys):
    path, _ = cudnn
    report = ported(capsys, path, "--to", "keras", "--out", tmp_path / "cudnn.safetensors",
                    "--check")
    assert 'cu_dnnlstm_1 = keras.layers.LSTM(5, name="cu_dnnlstm_1")' in report
    assert "2 of 2 layers within 1e-05" in report


def test_tf_keras_2_15_h5_reads_as_keras_2(tmp_path, capsys):
    """tf.keras 2.15 writes "Functional" and sigmoid; its layers still run as Keras 2's."""
    rng = np.random.default_rng(SEED + 2)
    layers = [entry("InputLayer", "input_1", [], batch_input_shape=[None, None, E]),
              entry("GRU", "gru", ["input_1"], units=H, recurrent_activation="sigmoid",
                    reset_after=True, return_sequences=True)]
    gru = recurrent_weights(rng, "gru/gru_cell", E, H, 3, 3 * H)
    gru[2] = (gru[2][0], random(rng, 2, 3 * H))
    path = tmp_path / "tf_keras.h5"
    write_keras2_h5(path, layers, {"gru": gru}, version="2.15.0", cls="Functional")
    report = ported(capsys, path, "--to", "torch", "--out", tmp_path / "g.pt", "--check")
    assert "Keras 2.15.0" in report and "keras 2 (numpy)" in report
    assert "1 of 1 layers within 1e-05" in report


def test_a_keras_2_weights_only_file_says_what_to_do(tmp_path, capsys):
    path = tmp_path / "weights_only.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.asarray([b"lstm_1"])
        f.attrs["keras_version"] = b"2.2.4"
        g = f.create_group("lstm_1")
        g.attrs["weight_names"] = np.asarray([b"lstm_1/kernel:0"])
        g.create_dataset("lstm_1/kernel:0", data=np.ones((3, 8), np.float32))
    err = refused_port(capsys, path, "--to", "torch", "--out", tmp_path / "x.pt")
    assert "holds weights only (Keras 2 save_weights)" in err
    assert "model.save('model.h5')" in err


def test_partial_with_nothing_left_and_a_legacy_subclassed_model_are_one_line_each(tmp_path,
                                                                                  capsys):
    rng = np.random.default_rng(SEED + 3)
    lstm = [entry("LSTM", "lstm_1", [], units=2)]
    write_keras2_h5(tmp_path / "only_lstm.h5", lstm,
                    {"lstm_1": recurrent_weights(rng, "lstm_1", 3, 2, 4, 8)})
    write_keras2_h5(tmp_path / "subclassed.h5", lstm, {}, version="3.15.1", cls="Translator")
    for name, args, expected in (
        ("only_lstm.h5", ("--partial",), "--partial skips every layer with weights (lstm_1): "
                                         "nothing left to write"),
        ("subclassed.h5", (), "the model is a 'Translator' saved in the legacy .h5 format, whose "
                              "config does not list its layers"),
    ):
        err = refused_port(capsys, tmp_path / name, "--to", "torch", "--out",
                           tmp_path / "x.safetensors", *args)
        assert expected in err, err


BROKEN = {
    "a layer that is a list": lambda layers: [*layers[:1], ["LSTM"]],
    "options that are a list": lambda layers: [{**layers[0], "config": [1, 2]}],
    "a Bidirectional's layer that is a string": lambda layers: [
        {"name": "b", "class_name": "Bidirectional", "config": {"name": "b", "layer": "LSTM"}}],
    "a class name that is a number": lambda layers: [{**layers[0], "class_name": 7}],
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_config_of_another_shape_is_one_port_error(tmp_path, case):
    layers = BROKEN[case]([entry("LSTM", "lstm_1", [], units=2)])
    path = tmp_path / "broken.h5"
    write_keras2_h5(path, layers, {})
    with pytest.raises(PortError, match="the model config is not what Keras writes") as error:
        read(path)
    assert len(str(error.value).splitlines()) == 1 and str(path) in str(error.value)
