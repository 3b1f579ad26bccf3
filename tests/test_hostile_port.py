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
    finding 6  tracebacks where one line is promised
    finding 7  messages that do not name the file
    and the readers issue 23 added: TF2 object-based checkpoints (a string tensor, object
    paths), and names a file makes a megabyte long, in any reader
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
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

MIB = 1 << 20
BOMB_PEAK = 64 * MIB  # what a refused bomb may cost, at most: the files declare gigabytes


def refused(path, holds: str = "", **options) -> str:
    """port.read's PortError for ``path``: one line, naming the file, holding ``holds``."""
    message = refusal(lambda: port.read(str(path), **options), PortError, holds)
    assert "\n" not in message and str(path) in message, message
    return message


def refused_bomb(path, holds: str = "", **options) -> int:
    """As ``refused``, measured: returns the peak memory of the refusal (bytes)."""
    outcome, used = hf.peak(lambda: port.read(str(path), **options))
    assert isinstance(outcome, PortError), f"{type(outcome).__name__}: {outcome}"
    assert holds in str(outcome) and "\n" not in str(outcome), str(outcome)
    assert used < BOMB_PEAK, f"refusing {path} used {used / MIB:.0f} MiB"
    return used


def _external(tensor, location: str, offset: int = 0, length: int | None = None) -> None:
    """Moves ``tensor``'s data out to ``location`` (by name only: the file is the test's)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    tensor.external_data.add(key="offset", value=str(offset))
    if length is not None:
        tensor.external_data.add(key="length", value=str(length))


def _constant_model(location: str):
    """The embedding held by a Constant node whose tensor lives at ``location``."""
    model = hf.onnx_model()
    table = next(t for t in model.graph.initializer if t.name == "embedding")
    constant = helper.make_node("Constant", [], ["embedding"], name="/embedding/Constant",
                                value=numpy_helper.from_array(numpy_helper.to_array(table)))
    model.graph.initializer.remove(table)
    model.graph.node.insert(0, constant)  # a copy goes in: edit the graph's own
    _external(model.graph.node[0].attribute[0].t, location, length=hf.V * hf.E * 4)
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
    refused(src, "attribute 'value' of node '/embedding/Constant' (Constant) keeps its data")
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
    _external(inner.initializer[1], "../weights.bin")
    model = hf.onnx_model()
    condition = numpy_helper.from_array(np.array(True), "condition")
    model.graph.initializer.append(condition)
    model.graph.node.append(helper.make_node("If", ["condition"], ["z"], name="branch",
                                             then_branch=inner, else_branch=inner))
    (tmp_path / "m").mkdir()
    refused(hf.write_onnx(tmp_path / "m" / "model.onnx", model), "outside its folder")


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
    refused(hf.write_onnx(tmp_path / "evil.onnx", model),
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
    refused(tmp_path / "model.ckpt", "is a FIFO (named pipe)")


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
    message = refused(hf.write_legacy_h5(tmp_path / "long.h5", config=config),
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
    _external(table, "weights.bin", length=size)
    refused_bomb(hf.write_onnx(folder / "model.onnx", model), "over the 1 GiB")


def test_5_onnx_external_data_past_its_file_is_not_read(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(16))
    model = hf.onnx_model()
    _external(model.graph.initializer[0], "short.bin", length=hf.V * hf.E * 4)
    refused(hf.write_onnx(tmp_path / "model.onnx", model), "asks for bytes 0 to 60 but the file "
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


# ---- finding 6: one line, never a traceback ----

def _layer(config: dict, index: int) -> dict:
    return config["config"]["layers"][index]


# A config that lists no layers (or an empty list of them) is a subclassed model's to
# Keras: a .keras file is then read by its weights' structure (a clean read), a legacy .h5
# is refused.
LISTS_NO_LAYERS = ("config is a list", "layers is a number", "the model is a number")
KERAS_CONFIGS = {
    "config is a list": lambda c: c.update(config=[]),
    "layers is a number": lambda c: c["config"].update(layers=5),
    "a layer is a string": lambda c: c["config"]["layers"].append("LSTM"),
    "class_name is a number": lambda c: _layer(c, 2).update(class_name=5),
    "Bidirectional.layer is a string": lambda c: _layer(c, 2).update(
        class_name="Bidirectional", config={"name": "lstm", "layer": "LSTM"}),
    "TimeDistributed config is null": lambda c: _layer(c, 3).update(
        class_name="TimeDistributed", config={"name": "dense", "layer": None}),
    "units is a string": lambda c: _layer(c, 2)["config"].update(units="4"),
    "use_bias is a string": lambda c: _layer(c, 3)["config"].update(use_bias="no"),
    "the model is a number": lambda c: c.clear(),
    "a name is a list": lambda c: _layer(c, 2)["config"].update(name=[1, 2]),
}


@pytest.mark.parametrize("case", list(KERAS_CONFIGS))
def test_6_a_keras_config_of_unexpected_shape_is_one_line(tmp_path, case):
    config = hf.keras_config()
    KERAS_CONFIGS[case](config)
    for src in (hf.write_keras(tmp_path / "m.keras", config),
                hf.write_legacy_h5(tmp_path / "m.h5", config=config)):
        if case in LISTS_NO_LAYERS and src.suffix == ".keras":
            assert isinstance(port.read(str(src)), port.Source), case  # by its weights' structure
            continue
        refused(src)


@pytest.mark.parametrize("where", ["config.json", "model_config"])
def test_6_deep_json_is_refused_before_python_recurses(tmp_path, where):
    deep = '{"class_name": "Functional", "config": ' + "[" * 100_000 + "]" * 100_000 + "}"
    src = (hf.write_keras(tmp_path / "deep.keras", deep) if where == "config.json"
           else hf.write_legacy_h5(tmp_path / "deep.h5", config=deep))
    refused(src, "nests JSON deeper than 64 levels")


@pytest.mark.parametrize("method, flag, holds", [
    (9, 0, "compression method 9 (deflate64)"),
    (99, 1, "is encrypted"),
    (99, 0, "compression method 99 (AES encryption)"),
    (0, 1, "is encrypted"),
])
def test_6_zip_methods_and_encryption_are_refused_by_name(tmp_path, method, flag, holds):
    raw = bytearray(hf.write_keras(tmp_path / "plain.keras").read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at >= 0:
            raw[at + flags_at : at + flags_at + 2] = flag.to_bytes(2, "little")
            raw[at + flags_at + 2 : at + flags_at + 4] = method.to_bytes(2, "little")
            at = raw.find(signature, at + 4)
    src = tmp_path / "odd.keras"
    src.write_bytes(raw)
    refused(src, holds)


def _cycle(h5):
    h5["model_weights/lstm/lstm/loop"] = h5["model_weights/lstm"]


def _deep(h5):
    group = h5["model_weights/dense"]
    for _ in range(70):
        group = group.create_group("g")


def _datatype(h5):
    h5["model_weights/lstm/lstm/type"] = np.dtype("f4")


def _nowhere(h5):
    h5["model_weights/lstm"].attrs["weight_names"] = np.array([b"lstm/nowhere:0"])


def _external_link(h5):
    import h5py

    h5["model_weights/lstm/lstm/away"] = h5py.ExternalLink("/etc/hostname", "/")


HDF5_CASES = {"hard-link cycle": (_cycle, "reached before (a hard-link cycle?)"),
              "groups 70 deep": (_deep, "nests groups deeper than 64 levels"),
              "committed datatype": (_datatype, ""),
              "weight_names pointing nowhere": (_nowhere, "which is not a dataset of its group"),
              "external link": (_external_link, "is an external link to /etc/hostname")}


@pytest.mark.parametrize("case", list(HDF5_CASES))
def test_6_hdf5_structures_are_one_line(tmp_path, case):
    edit, holds = HDF5_CASES[case]
    src = hf.write_legacy_h5(tmp_path / "m.h5", edit=edit)
    if not holds:  # a committed datatype holds no data: nothing to refuse
        assert port.read(str(src)).layers
        return
    refused(src, holds)


def _scalar_r(model):
    r = model.graph.initializer[2]
    r.CopyFrom(numpy_helper.from_array(np.array(0.5, np.float32), "R"))


def _non_tensor_constant(model):
    model.graph.node.insert(0, helper.make_node("Constant", [], ["c"], value_float=1.0))


def _data_type(value):
    return lambda model: setattr(model.graph.initializer[1], "data_type", value)


ONNX_CASES = {
    "data_type 0": (_data_type(0), "has data_type 0"),
    "data_type 999": (_data_type(999), "has data_type 999"),
    "a scalar R": (_scalar_r, "has W (1, 16, 3), R ()"),
    "an LSTM without inputs": (lambda m: m.graph.node[1].ClearField("input"), ""),
    "a Gather without outputs": (lambda m: m.graph.node[0].ClearField("output"), ""),
    "a non-tensor Constant": (_non_tensor_constant, ""),
    "dims that do not match the data": (
        lambda m: m.graph.initializer[1].dims.extend([400000, 300000]), "declares"),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_6_onnx_structures_are_one_line(tmp_path, case):
    edit, holds = ONNX_CASES[case]
    model = hf.onnx_model()
    edit(model)
    src = hf.write_onnx(tmp_path / "m.onnx", model)
    try:
        port.read(str(src))
    except PortError as error:
        assert holds in str(error) and "\n" not in str(error) and str(src) in str(error), error
    else:
        assert not holds, f"{case} was read"


def test_6_a_node_name_that_is_not_utf8_is_one_line(tmp_path):
    model = hf.onnx_model()
    model.graph.node[1].name = "lstm-\u00e9"
    raw = model.SerializeToString().replace("lstm-\u00e9".encode(), b"lstm-\xff\xfe")
    src = tmp_path / "m.onnx"
    src.write_bytes(raw)
    refused(src, "which is not UTF-8 text")


TORCH_TENSORS = {
    "sparse": (lambda t: t.zeros(4, 3).to_sparse(), "(sparse)"),
    "CSR": (lambda t: t.eye(3).to_sparse_csr(), "(sparse)"),
    "meta": (lambda t: t.empty(4, 3, device="meta"), "a meta tensor with no data"),
    "complex": (lambda t: t.zeros(4, 3, dtype=t.complex64), "holds torch.complex64 values"),
}


@pytest.mark.parametrize("case", list(TORCH_TENSORS))
def test_6_torch_tensors_that_are_not_dense_numbers_are_one_line(tmp_path, case):
    torch = pytest.importorskip("torch")
    make, holds = TORCH_TENSORS[case]
    src = tmp_path / "m.pt"
    with pytest.warns(UserWarning) if case == "CSR" else _Nothing():
        torch.save({"embedding.weight": make(torch)}, src)
    refused(src, holds)


def test_6_a_quantized_torch_tensor_and_a_1d_weight_ih_are_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated: that is the point
        quantized = torch.quantize_per_tensor(torch.rand(4, 3), 0.1, 0, torch.quint8)
        torch.save({"embedding.weight": quantized}, tmp_path / "q.pt")
        refused(tmp_path / "q.pt", "is quantized")
    lstm = torch.nn.LSTM(3, 4).state_dict()
    lstm["weight_ih_l0"] = lstm["weight_ih_l0"].flatten()
    torch.save({f"rnn.{k}": v for k, v in lstm.items()}, tmp_path / "flat.pt")
    refused(tmp_path / "flat.pt", "rnn.weight_ih_l0 has shape (48,); an nn.LSTM or nn.GRU "
                                  "weight is 2-D")


def test_6_tf1_index_shapes_that_do_not_match_the_data_are_one_line(tmp_path):
    prefix = hf.write_bundle(tmp_path / "model.ckpt",
                             shapes={"rnn/lstm_cell/kernel": (400000, 300000)})
    refused(prefix, "over the 1 GiB")
    prefix = hf.write_bundle(tmp_path / "model.ckpt", shapes={"rnn/lstm_cell/kernel": (7, 15)})
    refused(prefix, "the index does not match the data")




# ---- finding 7: messages that name the file and say what is wrong ----

def _long_number(folder):
    text = json.dumps(hf.keras_config()).replace('"units": 4', '"units": ' + "9" * 5000, 1)
    return hf.write_keras(folder / "big.keras", text)


def _not_utf8(folder):
    return hf.write_keras(folder / "u.keras", b'{"class_name": "Functional", "config": '
                                              b'{"name": "\xff\xfe"}}')


def _offset_not_a_number(folder):
    model = hf.onnx_model()
    _external(model.graph.initializer[0], "w.bin")
    next(e for e in model.graph.initializer[0].external_data if e.key == "offset").value = "abc"
    (folder / "w.bin").write_bytes(bytes(4096))
    return hf.write_onnx(folder / "off.onnx", model)


MESSAGES = {  # before: "Exceeds the limit (4300 digits)", "'utf-8' codec can't decode",
    # "invalid literal for int()", none naming the file
    "a number of 5000 digits": (_long_number, "config.json: holds a number written with 5000"),
    "JSON that is not UTF-8": (_not_utf8, "config.json: is not UTF-8 text"),
    "an external offset that is not a number": (_offset_not_a_number,
                                                "has the external data offset 'abc'"),
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_7_a_message_names_the_file_and_what_is_wrong(tmp_path, case):
    write, holds = MESSAGES[case]
    refused(write(tmp_path), holds)

# ---- TF2 object-based checkpoints: the same bundle reader, a string tensor, object paths ----

VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


def _graph_corrupted(prefix):
    shard = prefix.parent / f"{prefix.name}.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[5] ^= 0xFF  # the object graph's bytes (its name sorts first): its CRC-32C fails
    shard.write_bytes(bytes(data))


TF2_CASES = {
    "object graph declared 2**40 strings": (
        {}, {"_CHECKPOINTABLE_OBJECT_GRAPH": (1 << 40,)}, None, "over the 1 GiB"),
    "object graph's lengths not its size": (
        {"_CHECKPOINTABLE_OBJECT_GRAPH": np.array([b"ab", b"c"], dtype=object)},
        {"_CHECKPOINTABLE_OBJECT_GRAPH": (3,)}, None, "does not match its size"),
    "object graph's bytes corrupted": ({}, {}, _graph_corrupted, "does not match its checksum"),
    "a variable of strings": ({f"model/fc/kernel{VALUE}": np.array([b"x"] * 4, dtype=object)},
                              {}, None, "must hold real numbers"),
    "a path 50000 objects deep": ({f"model/{'a/' * 50_000}kernel{VALUE}": np.ones((2, 2),
                                                                                  np.float32)},
                                  {}, None, "characters); port reads layers named in at most"),
}


def test_tf2_a_hand_written_object_based_checkpoint_reads_without_tensorflow(tmp_path):
    tensors = hf.tf2_tensors()
    source = port.read(str(hf.write_bundle(tmp_path / "model.ckpt", tensors)))
    layers = {layer.name: layer for layer in source.layers}
    assert set(layers) == {"embedding", "fc"}, sorted(layers)
    np.testing.assert_array_equal(layers["embedding"].weight,
                                  tensors[f"model/embedding/embeddings{VALUE}"])
    np.testing.assert_array_equal(layers["fc"].bias, tensors[f"model/fc/bias{VALUE}"])


@pytest.mark.parametrize("case", list(TF2_CASES))
def test_tf2_object_based_checkpoints_are_one_line(tmp_path, case):
    tensors, shapes, edit, holds = TF2_CASES[case]
    prefix = hf.write_bundle(tmp_path / "model.ckpt", {**hf.tf2_tensors(), **tensors}, shapes)
    if edit is not None:
        edit(prefix)
    message = refused(prefix, holds)
    assert len(message) < 500, len(message)


# ---- a name a file makes a megabyte long: one short line, whatever the reader ----

LONG = "x" * (1 << 20)


def _long_torch(path):
    torch = pytest.importorskip("torch")
    torch.save({f"{LONG}.weight": torch.rand(3, 3, 3)}, path)


def _long_onnx(path):
    model = hf.onnx_model()
    for node in model.graph.node:
        node.name = LONG + node.name
    hf.write_onnx(path, model)


def _long_tf2_root(path):
    hf.write_bundle(path, {name.replace("model/", f"{LONG}/"): value
                           for name, value in hf.tf2_tensors().items()})


@pytest.mark.parametrize("name, write", [("m.pt", _long_torch), ("m.onnx", _long_onnx)])
def test_a_layer_named_a_megabyte_long_is_refused_in_a_short_line(tmp_path, name, write):
    write(tmp_path / name)
    message = refused(tmp_path / name, "characters); port reads layers named in at most")
    assert len(message) < 500, len(message)


def test_a_megabyte_long_object_root_is_shown_short_in_the_report(tmp_path):
    _long_tf2_root(tmp_path / "model.ckpt")
    source = port.read(str(tmp_path / "model.ckpt"))
    assert [layer.name for layer in source.layers] == ["embedding", "fc"]
    assert max(len(line) for line in source.about) < 500, [len(x) for x in source.about]


def test_a_port_error_of_a_megabyte_keeps_its_head_and_tail():
    message = str(PortError(f"model.pt: tensor {LONG} holds NaN; save finite weights"))
    assert len(message) < 2100 and message.startswith("model.pt: tensor xxx"), len(message)
    assert "characters not shown" in message and message.endswith("save finite weights")


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
