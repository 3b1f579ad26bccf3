"""``seq2seq-rosetta port`` from an ONNX file exported by ``torch.onnx.export``, to Keras.

A small PyTorch model (Embedding, a two-layer bidirectional LSTM, a GRU, a
Linear) is exported with the TorchScript exporter (``dynamo=False``): one ONNX
LSTM node per layer, W/R/B as initializers, the Linear as MatMul + Add.  It is
ported to Keras, the printed layers are built and loaded with
``keras_impl.load_ported``, and the Keras model gives PyTorch's logits.  External
data is read from SRC's folder and refused from anywhere else.

Shape legend: B batch, S steps, V vocabulary.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from tests.port_support import keras_layers, run_port

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
keras = pytest.importorskip("keras")
from torch import nn  # noqa: E402

import keras_impl  # noqa: E402

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


def test_torch_onnx_export_ported_to_keras_gives_the_same_logits(exported, tmp_path, capsys):
    model, path = exported
    dst = tmp_path / "tagger_keras.safetensors"
    code, report, err = run_port(capsys, path, "--to", "keras", "--out", dst, "--check")
    assert (code, err) == (0, ""), report + err
    for line in ('lstm_LSTM = keras.layers.Bidirectional(keras.layers.LSTM(3), name="lstm_LSTM")',
                 'lstm_LSTM_1 = keras.layers.Bidirectional(keras.layers.LSTM(3), '
                 'name="lstm_LSTM_1")', 'gru_GRU = keras.layers.GRU(5, name="gru_GRU")',
                 "onnxruntime", "5 of 5 layers within 1e-05"):
        assert line in report, f"{line!r} not in the report:\n{report}"

    layers = keras_layers(report, return_sequences=True)
    ids = keras.Input((None,), dtype="int32")
    x = layers["emb_Gather"](ids)
    for name in ("lstm_LSTM", "lstm_LSTM_1", "gru_GRU", "fc_MatMul"):
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
