"""Small model files of every format port reads, written inside the tests, and what a
hostile-input test measures (the peak memory of a call).

Each builder writes a valid file: from it the tests make the hostile one (a
member re-zipped with another method, an HDF5 dataset declared huge, a tensor's
external data pointed out of its folder).  The libraries that are light build
theirs (h5py, onnx, safetensors, torch); a ``.keras`` archive and a TF
checkpoint are simple enough to write by hand, which keeps Keras and
TensorFlow out of these tests (``test_port_keras.py`` and ``test_port_tf1.py``
port files their own libraries wrote, through the same readers).

Random, asymmetric weights; shapes: an embedding (V, E), an LSTM E -> H, a
dense H -> V.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from shared.files import confined
from shared.files.crc32c import crc32c, masked

V, E, H = 5, 3, 4


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"embedding": (V, E), "kernel": (E, 4 * H), "recurrent_kernel": (H, 4 * H),
              "bias": (4 * H,), "dense_kernel": (H, V), "dense_bias": (V,)}
    return {name: rng.uniform(-0.5, 0.5, shape).astype(np.float32)
            for name, shape in shapes.items()}


# ---- Keras: a .keras archive and a legacy .h5, as Keras 3 lays them out ----

def keras_config() -> dict:
    layer = lambda cls, name, **config: {"module": "keras.layers", "class_name": cls,  # noqa: E731
                                         "config": {"name": name, **config}}
    return {"module": "keras", "class_name": "Functional", "config": {"name": "model", "layers": [
        layer("InputLayer", "ids"), layer("Embedding", "embedding", input_dim=V, output_dim=E),
        layer("LSTM", "lstm", units=H), layer("Dense", "dense", units=V)]}}


def keras_weights(seed: int = 0) -> bytes:
    """model.weights.h5 of ``keras_config()``: layers/{class}/vars/0.. as Keras 3 writes them."""
    import h5py

    w = weights(seed)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for group, name, arrays in (
            ("layers/input_layer/vars", "ids", []),
            ("layers/embedding/vars", "embedding", [w["embedding"]]),
            ("layers/lstm/vars", "lstm", []),
            ("layers/lstm/cell/vars", "lstm_cell", [w["kernel"], w["recurrent_kernel"],
                                                    w["bias"]]),
            ("layers/dense/vars", "dense", [w["dense_kernel"], w["dense_bias"]]),
        ):
            vars_group = h5.create_group(group)
            vars_group.attrs["name"] = name
            for index, array in enumerate(arrays):
                vars_group.create_dataset(str(index), data=array)
    return buffer.getvalue()


def write_keras(path: Path, config=None, weights_h5: bytes | None = None,
                members: dict | None = None, method: int = zipfile.ZIP_STORED) -> Path:
    """A .keras archive: config.json and model.weights.h5 (or ``members`` as given)."""
    if members is None:
        config = keras_config() if config is None else config
        text = config if isinstance(config, bytes | str) else json.dumps(config)
        members = {"metadata.json": b"{}", "config.json": text,
                   "model.weights.h5": keras_weights() if weights_h5 is None else weights_h5}
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_legacy_h5(path: Path, config=None, seed: int = 0, edit=None) -> Path:
    """A legacy .h5 model: attrs model_config, model_weights/{layer} with weight_names."""
    import h5py

    w = weights(seed)
    config = keras_config() if config is None else config
    layers = {"embedding": {"embeddings:0": w["embedding"]},
              "lstm": {"lstm_cell/kernel:0": w["kernel"],
                       "lstm_cell/recurrent_kernel:0": w["recurrent_kernel"],
                       "lstm_cell/bias:0": w["bias"]},
              "dense": {"kernel:0": w["dense_kernel"], "bias:0": w["dense_bias"]}}
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = config if isinstance(config, str) else json.dumps(config)
        root = h5.create_group("model_weights")
        for layer, arrays in layers.items():
            group = root.create_group(layer)
            names = [f"{layer}/{name}" for name in arrays]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, array in zip(names, arrays.values(), strict=True):
                group.create_dataset(name, data=array)
        if edit is not None:
            edit(h5)
    return path


# ---- a TF checkpoint, written by hand (its format: shared.files.bundle) ----

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _entry_proto(dtype: int, shape: tuple, offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(_field(2, 2, _varint(len(d)) + d)
                    for d in (_field(1, 0, _varint(n)) for n in shape))
    return (_field(1, 0, _varint(dtype)) + _field(2, 2, _varint(len(dims)) + dims)
            + _field(4, 0, _varint(offset)) + _field(5, 0, _varint(size))
            + _field(6, 5, masked(crc).to_bytes(4, "little")))


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")


def _trailed(block: bytes) -> bytes:
    return block + b"\x00" + masked(crc32c(block + b"\x00")).to_bytes(4, "little")


def tf1_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """A TF1 LSTMCell's variables (kernel (in + H, 4H), bias (4H,)) and global_step."""
    rng = np.random.default_rng(seed)
    return {"rnn/lstm_cell/kernel": rng.uniform(-0.5, 0.5, (E + H, 4 * H)).astype(np.float32),
            "rnn/lstm_cell/bias": rng.uniform(-0.5, 0.5, (4 * H,)).astype(np.float32),
            "global_step": np.array(7, np.int64)}


def write_bundle(prefix: Path, tensors: dict | None = None, shapes: dict | None = None) -> Path:
    """``prefix.index`` and ``prefix.data-00000-of-00001``; ``shapes`` overrides the shapes
    the index declares (a hostile index), the data staying as it is."""
    tensors = tf1_tensors() if tensors is None else tensors
    dtypes = {np.dtype(np.float32): 1, np.dtype(np.int64): 9, np.dtype(object): 7}
    data, entries = b"", []
    for name in sorted(tensors):
        raw, crc = (_string_bytes(tensors[name]) if tensors[name].dtype == object
                    else (np.ascontiguousarray(tensors[name]).tobytes(), None))
        shape = (shapes or {}).get(name, tensors[name].shape)
        proto = _entry_proto(dtypes[tensors[name].dtype], shape, len(data), len(raw),
                             crc32c(raw) if crc is None else crc)
        entries.append((name.encode(), proto))
        data += raw
    header = _field(1, 0, _varint(1)) + _field(3, 2, _varint(2) + _field(1, 0, _varint(1)))
    data_block = _block([(b"", header), *entries])
    index_block = _block([(entries[-1][0] + b"\xff", _varint(0) + _varint(len(data_block)))])
    meta_block = _block([])
    table = _trailed(data_block)
    meta_at, table = len(table), table + _trailed(meta_block)
    index_at, table = len(table), table + _trailed(index_block)
    handles = (_varint(meta_at) + _varint(len(meta_block)) + _varint(index_at)
               + _varint(len(index_block)))
    footer = handles.ljust(40, b"\x00") + (0xDB4775248B80FB57).to_bytes(8, "little")
    Path(f"{prefix}.index").write_bytes(table + footer)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)
    return prefix


def _string_bytes(strings: np.ndarray) -> tuple[bytes, int]:
    """A string tensor as a TF checkpoint stores it (varint lengths, their checksum, the
    bytes), and the CRC-32C its index entry keeps (over the lengths as 4-byte numbers)."""
    flat = [bytes(item) for item in strings.reshape(-1)]
    as_numbers = np.asarray([len(item) for item in flat], dtype="<u4").tobytes()
    header = masked(crc32c(as_numbers)).to_bytes(4, "little")
    raw = b"".join(_varint(len(item)) for item in flat) + header + b"".join(flat)
    return raw, crc32c(as_numbers + header + b"".join(flat))


def tf2_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """A TF2 object-based checkpoint's variables (``tf.train.Checkpoint(model=...)`` of a
    tf.keras model: an embedding, a dense layer), its save_counter and its object graph
    (a serialized proto port never parses: these bytes stand for one)."""
    rng = np.random.default_rng(seed)
    value = "/.ATTRIBUTES/VARIABLE_VALUE"
    return {f"model/embedding/embeddings{value}":
            rng.uniform(-0.5, 0.5, (V, E)).astype(np.float32),
            f"model/fc/kernel{value}": rng.uniform(-0.5, 0.5, (H, V)).astype(np.float32),
            f"model/fc/bias{value}": rng.uniform(-0.5, 0.5, (V,)).astype(np.float32),
            f"save_counter{value}": np.array(1, np.int64),
            "_CHECKPOINTABLE_OBJECT_GRAPH": np.array(b"\n\x06\n\x04model", dtype=object)}


def reseal_index(index: bytes) -> bytes:
    """``index`` with every block's checksum recomputed: a mutation that reaches the parser."""
    footer = index[-48:]
    out = bytearray(index)
    position = 0
    handles = []
    for _ in range(2):
        offset, position = _read_varint(footer, position)
        size, position = _read_varint(footer, position)
        handles.append((offset, size))
    handles.append((0, handles[0][0] - 5))  # the one data block, before the metaindex
    for offset, size in handles:
        if offset >= 0 and offset + size + 5 <= len(out) - 48:
            block = bytes(out[offset : offset + size + 1])
            out[offset + size + 1 : offset + size + 5] = masked(crc32c(block)).to_bytes(4, "little")
    return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result, shift = 0, 0
    while position < len(data):
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return result, position


# ---- ONNX: an embedding (Gather) into an LSTM node ----

def onnx_model(seed: int = 0):
    """ids (T, B) -> Gather(embedding) -> LSTM(W, R, B): what torch.onnx.export writes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    shapes = {"embedding": (V, E), "W": (1, 4 * H, E), "R": (1, 4 * H, H), "B": (1, 8 * H)}
    arrays = {name: rng.uniform(-0.5, 0.5, shape) for name, shape in shapes.items()}
    nodes = [helper.make_node("Gather", ["embedding", "ids"], ["x"], name="/embedding/Gather"),
             helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], name="/lstm/LSTM",
                              hidden_size=H)]
    graph = helper.make_graph(
        nodes, "model", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["T", "B"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(a.astype(np.float32), name)
                     for name, a in arrays.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def write_onnx(path: Path, model) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


# ---- what a test measures ----

def _status(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(found.group(1)) * 1024 if found else 0


def peak(call) -> tuple[object, int]:
    """(what ``call()`` returned or raised, the most memory it used: bytes).

    The process's resident high-water mark is reset first (``/proc/self/clear_refs``),
    so the figure is this call's, C++ allocations included; a confined child's own
    peak counts too (``shared.files.confined.last_child``).
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    start = _status("VmRSS")
    confined.last_child.clear()
    try:
        outcome = call()
    except Exception as error:  # the outcome the test checks
        outcome = error
    used = max(0, _status("VmHWM") - start)
    return outcome, max(used, int(confined.last_child.get("peak_bytes", 0)))


def refused(path, holds: str = "", **options) -> str:
    """port.read's PortError for ``path``: one line, naming the file, holding ``holds``."""
    from shared import port
    from shared.port import PortError
    from tests.refusal import refusal

    message = refusal(lambda: port.read(str(path), **options), PortError, holds)
    assert "\n" not in message and str(path) in message, message
    return message


def external(tensor, location: str, offset: int = 0, length: int | None = None) -> None:
    """Moves an ONNX ``tensor``'s data out to ``location`` (by name: the file is the test's)."""
    from onnx import TensorProto

    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    tensor.external_data.add(key="offset", value=str(offset))
    if length is not None:
        tensor.external_data.add(key="length", value=str(length))
