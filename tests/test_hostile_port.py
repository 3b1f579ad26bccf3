"""Issue 24's findings on ``port`` and ``onnx_impl.load_model``, each rebuilt here as a file.

Every hostile file is written by the test (``tests/hostile_files.py`` builds the
valid ones it starts from).  Each finding is a class of inputs; every input must
end in a clean port or one refusal: a ``PortError`` (or ``OnnxModelError``) of
one line that names the file, nothing written, no traceback, no hang, and, for
the bombs, a peak memory far below what the file declares (``peak``).

    finding 1  a file outside SRC's folder read into the output (ONNX external data)
    finding 3  wrong output with exit 0 (forget_bias, custom domains, activations)
    finding 4  hangs (FIFOs, libhdf5)
    finding 5  memory from small files (zip, HDF5, torch, ONNX, whole-file reads)

Findings 6 and 7 (one line, naming the file), TF2 checkpoints and megabyte names are
tests/test_hostile_port_messages.py.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from shared import port
from shared.port import PortError
from tests import hostile_files as hf
from tests.refusal import refusal

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

MIB = 1 << 20
BOMB_PEAK = 64 * MIB  # what a refused bomb may cost, at most: the files declare gigabytes


def refused_bomb(path, holds: str = "", **options) -> int:
    """As ``refused``, measured: returns the peak memory of the refusal (bytes)."""
    outcome, used = hf.peak(lambda: port.read(str(path), **options))
    assert isinstance(outcome, PortError), f"{type(outcome).__name__}: {outcome}"
    assert holds in str(outcome) and "\n" not in str(outcome), str(outcome)
    assert used < BOMB_PEAK, f"refusing {path} used {used / MIB:.0f} MiB"
    return used


def _constant_model(location: str):
    """The embedding held by a Constant node whose tensor lives at ``location``."""
    model = hf.onnx_model()
    table = next(t for t in model.graph.initializer if t.name == "embedding")
    constant = helper.make_node("Constant", [], ["embedding"], name="/embedding/Constant",
                                value=numpy_helper.from_array(numpy_helper.to_array(table)))
    model.graph.initializer.remove(table)
    model.graph.node.insert(0, constant)  # a copy goes in: edit the graph's own
    hf.external(model.graph.node[0].attribute[0].t, location, length=hf.V * hf.E * 4)
    return model


# ---- finding 1: no file outside SRC's folder is ever read ----

@pytest.mark.parametrize("location", ["secret.txt", "../secret.txt", "sub/id_rsa",
                                      "/etc/hostname", "link/secret.txt"])
def test_1_constant_external_data_is_read_only_from_src_folder(tmp_path, monkeypatch, location):
    secret = b"the first bytes of a secret: " * 8
    (tmp_path / "secret.txt").write_bytes(secret)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "id_rsa").write_bytes(secret)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sub").symlink_to(tmp_path / "sub")  # a symlink that leads out of the folder
    (folder / "link").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)  # where onnx itself would have looked for "secret.txt"
    src = hf.write_onnx(folder / "model.onnx", _constant_model(location))
    hf.refused(src, "attribute 'value' of node '/embedding/Constant' (Constant) keeps its data")
    dst = tmp_path / "out.safetensors"
    assert not dst.exists()


def test_1_constant_external_data_inside_src_folder_is_read_from_there(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    table = np.arange(hf.V * hf.E, dtype=np.float32).reshape(hf.V, hf.E) / 7
    (folder / "table.bin").write_bytes(table.tobytes())
    (tmp_path / "table.bin").write_bytes(np.ones_like(table).tobytes())  # the cwd's: not this
    monkeypatch.chdir(tmp_path)
    source = port.read(str(hf.write_onnx(folder / "model.onnx", _constant_model("table.bin"))))
    embedding = next(layer for layer in source.layers if type(layer).__name__ == "Embedding")
    np.testing.assert_array_equal(embedding.weight, table)


def test_1_external_data_in_a_subgraph_is_confined_too(tmp_path):
    """An If node's branch holds an initializer whose data points out of the folder."""
    inner = hf.onnx_model().graph
    hf.external(inner.initializer[1], "../weights.bin")
    model = hf.onnx_model()
    condition = numpy_helper.from_array(np.array(True), "condition")
    model.graph.initializer.append(condition)
    model.graph.node.append(helper.make_node("If", ["condition"], ["z"], name="branch",
                                             then_branch=inner, else_branch=inner))
    (tmp_path / "m").mkdir()
    hf.refused(hf.write_onnx(tmp_path / "m" / "model.onnx", model), "outside its folder")


# ---- finding 3: no wrong output with exit 0 ----

@pytest.mark.parametrize("bias", [float("nan"), float("inf"), -float("inf"), 1e39, 101.0])
def test_3_a_forget_bias_that_is_not_a_sane_number_is_refused(tmp_path, bias):
    prefix = hf.write_bundle(tmp_path / "model.ckpt")
    message = refusal(lambda: port.read(str(prefix), tf1_forget_bias=bias), PortError,
                      "--tf1-forget-bias must be a finite number in [-100, 100]")
    assert "\n" not in message


def test_3_an_operator_of_a_custom_domain_is_refused_whatever_its_name(tmp_path):
    model = hf.onnx_model()
    model.graph.node[1].domain = "com.evil"  # an LSTM that is not ONNX's LSTM
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    hf.refused(hf.write_onnx(tmp_path / "evil.onnx", model),
            "(op 'LSTM') is of the operator domain 'com.evil'")


@pytest.mark.parametrize("field", ["activation", "recurrent_activation"])
def test_3_an_activation_keras_does_not_define_is_refused_before_anything_is_written(
        tmp_path, field):
    config = hf.keras_config()
    config["config"]["layers"][2]["config"][field] = "os.system"
    src = hf.write_keras(tmp_path / "m.keras", config)
    source = port.read(str(src))  # read: the layer is there, and unportable
    message = refusal(lambda: port.write(source, "torch", str(tmp_path / "x.pt")), PortError,
                      "uses the activation 'os.system', which is not one of keras.activations'")
    assert not (tmp_path / "x.pt").exists() and "\n" not in message


def test_3_a_tensor_that_would_be_written_not_finite_is_refused(tmp_path):
    source = port.read(str(hf.write_keras(tmp_path / "m.keras")))
    written = port.files.Written(str(tmp_path / "x.safetensors"), "torch",
                                 port.writers.torch.plan_torch(source, "x").layers)
    written.layers[0].tensors["weight"][0, 0] = np.inf  # as a value folded in could make it
    refusal(lambda: port.files.save(written, "m.keras"), PortError, "would hold 1 NaN/inf")
    assert not (tmp_path / "x.safetensors").exists()


# ---- finding 4: nothing hangs ----

@pytest.mark.parametrize("part", ["model.ckpt.index", "model.ckpt.data-00000-of-00001"])
def test_4_a_fifo_in_a_tf1_checkpoint_is_refused_at_once(tmp_path, part):
    hf.write_bundle(tmp_path / "model.ckpt")
    (tmp_path / part).unlink()
    os.mkfifo(tmp_path / part)
    hf.refused(tmp_path / "model.ckpt", "is a FIFO (named pipe)")


def test_4_a_crashing_hdf5_file_is_one_refusal_not_a_dead_process(tmp_path):
    """One byte after an attribute's name: libhdf5 1.14 dies of SIGSEGV on it in-process.

    Read in the confined child, the crash (or whatever another libhdf5 does with
    it) is one line; the test process lives on.
    """
    raw = bytearray(hf.keras_weights())
    spot = raw.index(b"name") + 9
    for value in (58, 69, 93, 122, 163):
        raw[spot] = value
        src = hf.write_keras(tmp_path / f"m{value}.keras", weights_h5=bytes(raw))
        try:
            port.read(str(src))
        except PortError as error:
            assert "\n" not in str(error) and str(src) in str(error)


# ---- finding 5: small files cannot take big memory ----

def test_5_a_keras_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    src = hf.write_keras(tmp_path / "bomb.keras", method=zipfile.ZIP_DEFLATED,
                         members={"config.json": json.dumps(hf.keras_config()),
                                  "model.weights.h5": bytes(64 * MIB)})
    assert src.stat().st_size < MIB
    refused_bomb(src, "expansion a reader accepts (a zip bomb?)")


def test_5_a_zip_member_that_inflates_past_its_declared_size_is_stopped(tmp_path):
    src = hf.write_keras(tmp_path / "liar.keras", method=zipfile.ZIP_DEFLATED,
                         members={"config.json": json.dumps(hf.keras_config()),
                                  "model.weights.h5": bytes(32 * MIB)})
    raw = bytearray(src.read_bytes())
    declared = (32 * MIB).to_bytes(4, "little")
    for at in [i for i in range(len(raw) - 4) if raw[i : i + 4] == declared]:
        raw[at : at + 4] = (1000).to_bytes(4, "little")  # both headers now say 1000 bytes
    src.write_bytes(raw)
    refused_bomb(src, "model.weights.h5")


@pytest.mark.parametrize("shape, holds", [((30000, 30000), "over the 1 GiB a reader allocates"),
                                          ((20000, 10000), "but stores 0 (a fill value")])
def test_5_an_hdf5_dataset_declared_huge_with_a_fill_value_is_refused(tmp_path, shape, holds):
    import h5py

    def bomb(h5):
        del h5["model_weights/dense/dense/kernel:0"]
        h5["model_weights/dense"].create_dataset("dense/kernel:0", shape=shape, dtype="f4")

    src = hf.write_legacy_h5(tmp_path / "bomb.h5", edit=bomb)
    assert src.stat().st_size < MIB and h5py
    refused_bomb(src, holds)


def test_5_a_huge_attribute_makes_a_short_message(tmp_path):
    config = json.dumps({"class_name": "A" * (4 * MIB), "config": {}})
    message = hf.refused(hf.write_legacy_h5(tmp_path / "long.h5", config=config),
                      "whose config does not list its layers")
    assert len(message) < 500, len(message)


@pytest.mark.parametrize("shape, holds", [((30000, 30000), "over the 1 GiB"),
                                          ((16000, 16000), "a view with stride 0")])
def test_5_a_torch_stride_bomb_is_refused_before_it_is_converted(tmp_path, shape, holds):
    torch = pytest.importorskip("torch")
    src = tmp_path / "bomb.pt"
    torch.save({"embedding.weight": torch.zeros(1).expand(*shape)}, src)
    refused_bomb(src, holds)


@pytest.mark.parametrize("storage, holds", [
    (bytes(64 * MIB), "(a zip bomb?)"),  # 64 MiB from a few KiB
    (None, "uses compression method 8 (deflate); only stored members are read"),
])
def test_5_a_torch_file_with_a_deflated_member_is_refused_before_torch_reads_it(
        tmp_path, storage, holds):
    torch = pytest.importorskip("torch")
    plain, src = tmp_path / "plain.pt", tmp_path / "deflated.pt"
    torch.save({"embedding.weight": torch.rand(3, 4)}, plain)
    with zipfile.ZipFile(plain) as archive, zipfile.ZipFile(src, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith("data/0") and storage is not None:
                data = storage
            out.writestr(info.filename, data, zipfile.ZIP_DEFLATED)
    refused_bomb(src, holds)


@pytest.mark.parametrize("gib", [2.5, 6])
def test_5_onnx_external_data_declared_larger_than_the_cap_is_not_read(tmp_path, gib):
    folder = tmp_path / "m"
    folder.mkdir()
    size = int(gib * (1 << 30))
    with open(folder / "weights.bin", "wb") as file:
        file.truncate(size)  # a sparse file: no disk blocks, gigabytes long
    model = hf.onnx_model()
    table = model.graph.initializer[0]
    del table.dims[:]
    table.dims.extend([size // 4])
    hf.external(table, "weights.bin", length=size)
    refused_bomb(hf.write_onnx(folder / "model.onnx", model), "over the 1 GiB")


def test_5_onnx_external_data_past_its_file_is_not_read(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(16))
    model = hf.onnx_model()
    hf.external(model.graph.initializer[0], "short.bin", length=hf.V * hf.E * 4)
    hf.refused(hf.write_onnx(tmp_path / "model.onnx", model), "asks for bytes 0 to 60 but the file "
                                                           "holds 16")


@pytest.mark.parametrize("name", ["model.onnx", "model.ckpt.index", "checkpoint"])
def test_5_a_3_gib_file_is_refused_without_being_read(tmp_path, name):
    if name == "checkpoint":
        hf.write_bundle(tmp_path / "model.ckpt")
    with open(tmp_path / name, "ab") as file:
        file.truncate(3 << 30)
    src = tmp_path / name if name == "model.onnx" else tmp_path
    if name == "model.ckpt.index":
        src = tmp_path / "model.ckpt"
    outcome, used = hf.peak(lambda: port.read(str(src)))
    assert isinstance(outcome, PortError) and "is 3221225472 bytes" in str(outcome), outcome
    assert used < BOMB_PEAK
