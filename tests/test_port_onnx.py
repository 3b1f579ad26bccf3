"""``seq2seq-rosetta port`` from ONNX files: ``torch.onnx.export``'s, and tf2onnx's shape.

A small PyTorch model (Embedding, a two-layer bidirectional LSTM, a GRU, a
Linear) is exported with the TorchScript exporter (``dynamo=False``): one ONNX
LSTM node per layer ("/lstm/LSTM", "/lstm/LSTM_1"), W/R/B as initializers, the
Linear as MatMul + Add.  Ported to PyTorch, it loads into the user's own
``Tagger`` (the names are its module names again, the two LSTM nodes one
``nn.LSTM(num_layers=2)``); ported to Keras, the printed layers give PyTorch's
logits.  A graph shaped as tf2onnx writes a Keras model (TF op names, a Dense on
sequences as MatMul -> Reshape -> Add, a folded zero bias before a Softmax) is
built with ``onnx.helper`` (tf2onnx does not install next to this TensorFlow)
and ported against ONNX Runtime's run of it.  External data is read from SRC's
folder and refused from anywhere else.

Shape legend: B batch, S steps, E embedding, H hidden, V vocabulary.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from tests.port_support import keras_layers, ported, run_port

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
keras = pytest.importorskip("keras")
from torch import nn  # noqa: E402

import keras_impl  # noqa: E402
import torch_impl  # noqa: E402

V, B, S = 10, 3, 5


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 4)
        self.lstm = nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 7)

    def forward(self, ids):                                   # (B, S)
        x, _ = self.lstm(self.emb(ids))                       # (B, S, 6)
        x, _ = self.gru(x)                                    # (B, S, 5)
        return self.fc(x)                                     # (B, S, 7)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = Tagger().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-0.5, 0.5)
    folder = tmp_path_factory.mktemp("onnx")
    with warnings.catch_warnings():  # the TorchScript exporter warns that it is the old one
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, S, dtype=torch.long),), folder / "tagger.onnx",
                          dynamo=False, input_names=["ids"],
                          dynamic_axes={"ids": {0: "B", 1: "S"}})
    return model, folder / "tagger.onnx"


def test_torch_onnx_export_ported_to_torch_loads_into_the_users_own_module(
    exported, tmp_path, capsys
):
    model, path = exported
    dst = tmp_path / "tagger_torch.safetensors"
    ported(capsys, path, "--to", "torch", "--out", dst, "--check", lines=(
        "emb = nn.Embedding(10, 4)",
        "lstm = nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)",
        "2 ONNX nodes (lstm.LSTM, lstm.LSTM_1)", "fc = nn.Linear(5, 7)",
        "4 of 4 layers within 1e-05"))
    mine = Tagger().eval()  # the user's own class, as it was before the export
    torch_impl.load_ported(mine, dst)
    batch = torch.from_numpy(np.random.default_rng(2).integers(0, V, (B, S)))
    with torch.no_grad():
        assert_close("Tagger logits, ONNX -> PyTorch", mine(batch).numpy(),
                     model(batch).numpy(), STATE_ATOL)


def test_torch_onnx_export_ported_to_keras_gives_the_same_logits(exported, tmp_path, capsys):
    model, path = exported
    dst = tmp_path / "tagger_keras.safetensors"
    code, report, err = run_port(capsys, path, "--to", "keras", "--out", dst, "--check")
    assert (code, err) == (0, ""), report + err
    for line in ('lstm_l0 = keras.layers.Bidirectional(keras.layers.LSTM(3), name="lstm_l0")',
                 'lstm_l1 = keras.layers.Bidirectional(keras.layers.LSTM(3), name="lstm_l1")',
                 'gru = keras.layers.GRU(5, name="gru")', "onnxruntime",
                 "4 of 4 layers within 1e-05"):
        assert line in report, f"{line!r} not in the report:\n{report}"

    layers = keras_layers(report, return_sequences=True)
    ids = keras.Input((None,), dtype="int32")
    x = layers["emb"](ids)
    for name in ("lstm_l0", "lstm_l1", "gru", "fc"):
        x = layers[name](x)
    keras_model = keras.Model(ids, x)
    keras_impl.load_ported(keras_model, dst)
    batch = np.random.default_rng(1).integers(0, V, (B, S))
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    assert_close("logits, ONNX -> Keras", keras.ops.convert_to_numpy(keras_model(batch)),
                 expected, STATE_ATOL)


def test_external_data_is_read_from_src_folder_only(exported, tmp_path, capsys):
    _, path = exported
    inside = tmp_path / "model"
    inside.mkdir()
    model = onnx.load(path)
    onnx.save_model(model, inside / "tagger.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    code, report, err = run_port(capsys, inside / "tagger.onnx", "--to", "keras", "--out",
                                 tmp_path / "ok.safetensors")
    assert (code, err) == (0, ""), report + err

    shutil.copy(inside / "weights.bin", tmp_path / "weights.bin")
    escaping = onnx.load(inside / "tagger.onnx", load_external_data=False)
    for tensor in escaping.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    with open(inside / "escaping.onnx", "wb") as file:
        file.write(escaping.SerializeToString())
    dst = tmp_path / "refused.safetensors"
    code, out, err = run_port(capsys, inside / "escaping.onnx", "--to", "keras", "--out", dst)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "keeps its data at '../weights.bin', outside its folder" in err
    assert not dst.exists()


E, H, V_OUT = 4, 5, 7
LENGTHS = np.array([5, 1, 3])  # mixed, with a length-1 row


@pytest.fixture(scope="module")
def tf2onnx_graph(tmp_path_factory):
    """Embedding -> LSTM -> Dense(tanh) -> Dense(softmax, zero bias), as tf2onnx writes them:
    TF op names, tf2onnx's own names for what it rewrote (LSTM__31), Keras's (in, out)
    kernels under MatMul, the LSTM in ONNX's gate order i, o, f, c."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    table = rng.uniform(-0.5, 0.5, (V, E)).astype(np.float32)
    kernel, recurrent_kernel = (rng.uniform(-0.5, 0.5, (n, 4 * H)).astype(np.float32)
                                for n in (E, H))
    bias = rng.uniform(-0.5, 0.5, 4 * H).astype(np.float32)
    dense = rng.uniform(-0.5, 0.5, (H, 6)).astype(np.float32), \
        rng.uniform(-0.5, 0.5, 6).astype(np.float32)
    dense_1 = rng.uniform(-0.5, 0.5, (6, V_OUT)).astype(np.float32)  # its zero bias folded away

    def onnx_gates(a):  # Keras stacks i, f, c, o along the last axis; ONNX wants i, o, f, c
        return np.concatenate([a[..., g * H:(g + 1) * H] for g in (0, 3, 1, 2)], axis=-1)

    weights = {"embedding_table": table, "W": onnx_gates(kernel).T[None],
               "R": onnx_gates(recurrent_kernel).T[None],
               "B": np.concatenate([onnx_gates(bias), np.zeros(4 * H, np.float32)])[None],
               "dense_kernel": dense[0], "dense_bias": dense[1], "dense_1_kernel": dense_1,
               "to_rows": np.array([-1, H], np.int64), "to_rows_1": np.array([-1, 6], np.int64),
               "back": np.array([B, -1, 6], np.int64), "back_1": np.array([B, -1, V_OUT], np.int64),
               "squeeze_axes": np.array([1], np.int64)}
    node = helper.make_node
    nodes = [
        node("Gather", ["embedding_table", "ids"], ["x"], name="model/embedding/embedding_lookup"),
        node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2], name="model/lstm/transpose"),
        node("LSTM", ["x_t", "W", "R", "B", "lengths"], ["y", "", ""], hidden_size=H,
             name="LSTM__31"),
        node("Squeeze", ["y", "squeeze_axes"], ["y_s"], name="Squeeze__33"),
        node("Transpose", ["y_s"], ["y_b"], perm=[1, 0, 2], name="model/lstm/transpose_1"),
        node("Reshape", ["y_b", "to_rows"], ["d0"], name="model/dense/Tensordot/Reshape"),
        node("MatMul", ["d0", "dense_kernel"], ["d1"], name="model/dense/Tensordot/MatMul"),
        node("Reshape", ["d1", "back"], ["d2"], name="model/dense/Tensordot"),
        node("Add", ["d2", "dense_bias"], ["d3"], name="model/dense/BiasAdd"),
        node("Tanh", ["d3"], ["d4"], name="model/dense/Tanh"),
        node("Reshape", ["d4", "to_rows_1"], ["e0"], name="model/dense_1/Tensordot/Reshape"),
        node("MatMul", ["e0", "dense_1_kernel"], ["e1"], name="model/dense_1/Tensordot/MatMul"),
        node("Reshape", ["e1", "back_1"], ["e2"], name="model/dense_1/Tensordot"),
        node("Softmax", ["e2"], ["probabilities"], axis=-1, name="model/dense_1/Softmax"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx", [helper.make_tensor_value_info("ids", TensorProto.INT64, [B, "S"]),
                           helper.make_tensor_value_info("lengths", TensorProto.INT32, [B])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [B, "S", V_OUT])],
        initializer=[numpy_helper.from_array(a, name) for name, a in weights.items()])
    model = helper.make_model(graph, producer_name="tf2onnx", producer_version="1.16.1",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("tf2onnx") / "model.onnx"
    onnx.save(model, path)
    return path


def test_tf2onnx_dense_on_sequences_and_a_folded_bias_port_to_keras(tf2onnx_graph, tmp_path,
                                                                      capsys):
    import onnxruntime

    dst = tmp_path / "tf2onnx.safetensors"
    report = ported(capsys, tf2onnx_graph, "--to", "keras", "--out", dst, "--check", lines=(
        'embedding = keras.layers.Embedding(10, 4, name="embedding")',
        'lstm = keras.layers.LSTM(5, name="lstm")',
        "ONNX MatMul -> Reshape -> Add, 5 -> 6",
        'dense = keras.layers.Dense(6, activation=\'tanh\', name="dense")',
        f"dense_1 = keras.layers.Dense({V_OUT}, activation='softmax', use_bias=False",
        "tf2onnx drops a bias that is all zeros", "4 of 4 layers within 1e-05"))

    layers = keras_layers(report, return_sequences=True)
    ids, real_steps = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="bool")
    y = layers["lstm"](layers["embedding"](ids), mask=real_steps)
    model = keras.Model([ids, real_steps], layers["dense_1"](layers["dense"](y)))
    keras_impl.load_ported(model, dst)
    rng = np.random.default_rng(6)
    batch = rng.integers(0, V, (B, S))
    real = np.arange(S) < LENGTHS[:, None]
    session = onnxruntime.InferenceSession(str(tf2onnx_graph), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"ids": batch, "lengths": LENGTHS.astype(np.int32)})[0]
    got = keras.ops.convert_to_numpy(model([batch, real]))
    assert_close("tf2onnx graph probabilities, ported to Keras", got[real], expected[real],
                 STATE_ATOL)
