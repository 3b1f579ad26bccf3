"""Issue 24's findings 6 and 7 on ``port``, each rebuilt here as a file: one line, never a
traceback, and the line names the file and says what is wrong.

Every hostile file is written by the test (``tests/hostile_files.py`` builds the valid
ones it starts from, and ``hf.refused`` holds a refusal to one line naming the file).

    finding 6  tracebacks where one line is promised (Keras configs, deep JSON, zip
               methods, HDF5 structures, ONNX structures, torch tensors, TF1 index shapes)
    finding 7  messages that do not name the file
    and the readers issue 23 added: TF2 object-based checkpoints (a string tensor, object
    paths), and names a file makes a megabyte long, in any reader

Findings 1 to 5 (reads outside the folder, wrong output, hangs, bombs) are
tests/test_hostile_port.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared import port
from shared.port import PortError
from tests import hostile_files as hf

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

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
        hf.refused(src)


@pytest.mark.parametrize("where", ["config.json", "model_config"])
def test_6_deep_json_is_refused_before_python_recurses(tmp_path, where):
    deep = '{"class_name": "Functional", "config": ' + "[" * 100_000 + "]" * 100_000 + "}"
    src = (hf.write_keras(tmp_path / "deep.keras", deep) if where == "config.json"
           else hf.write_legacy_h5(tmp_path / "deep.h5", config=deep))
    hf.refused(src, "nests JSON deeper than 64 levels")


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
    hf.refused(src, holds)


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
    hf.refused(src, holds)


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
    hf.refused(src, "which is not UTF-8 text")


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
    hf.refused(src, holds)


def test_6_a_quantized_torch_tensor_and_a_1d_weight_ih_are_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated: that is the point
        quantized = torch.quantize_per_tensor(torch.rand(4, 3), 0.1, 0, torch.quint8)
        torch.save({"embedding.weight": quantized}, tmp_path / "q.pt")
        hf.refused(tmp_path / "q.pt", "is quantized")
    lstm = torch.nn.LSTM(3, 4).state_dict()
    lstm["weight_ih_l0"] = lstm["weight_ih_l0"].flatten()
    torch.save({f"rnn.{k}": v for k, v in lstm.items()}, tmp_path / "flat.pt")
    hf.refused(tmp_path / "flat.pt", "rnn.weight_ih_l0 has shape (48,); an nn.LSTM or nn.GRU "
                                  "weight is 2-D")


def test_6_tf1_index_shapes_that_do_not_match_the_data_are_one_line(tmp_path):
    prefix = hf.write_bundle(tmp_path / "model.ckpt",
                             shapes={"rnn/lstm_cell/kernel": (400000, 300000)})
    hf.refused(prefix, "over the 1 GiB")
    prefix = hf.write_bundle(tmp_path / "model.ckpt", shapes={"rnn/lstm_cell/kernel": (7, 15)})
    hf.refused(prefix, "the index does not match the data")




# ---- finding 7: messages that name the file and say what is wrong ----

def _long_number(folder):
    text = json.dumps(hf.keras_config()).replace('"units": 4', '"units": ' + "9" * 5000, 1)
    return hf.write_keras(folder / "big.keras", text)


def _not_utf8(folder):
    return hf.write_keras(folder / "u.keras", b'{"class_name": "Functional", "config": '
                                              b'{"name": "\xff\xfe"}}')


def _offset_not_a_number(folder):
    model = hf.onnx_model()
    hf.external(model.graph.initializer[0], "w.bin")
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
    hf.refused(write(tmp_path), holds)

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
    message = hf.refused(prefix, holds)
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
    message = hf.refused(tmp_path / name, "characters); port reads layers named in at most")
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
