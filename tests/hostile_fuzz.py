"""A seeded mutation fuzz of one of port's readers, run as a process of its own.

    python -m tests.hostile_fuzz FORMAT SEED COUNT FOLDER   -> one JSON line on stdout

For FORMAT (keras, keras-h5, onnx, torch, safetensors, tf1, tf2) it writes one small
valid file (``tests/hostile_files.py``), then COUNT mutants of it, and reads
each with ``port.read`` (and, when that succeeds, writes it with ``port.write``).
Every outcome must be a clean port or one ``PortError`` of one line naming the
file; anything else (another exception, a crash, a hang) is a finding, reported
with the mutant's number so that ``SEED`` replays it.

It runs in its own process, started by ``test_hostile_fuzz.py``, for three
reasons: its address space is capped (``RLIMIT_AS``, ``MEMORY`` more than it has
once its libraries are loaded), so a bomb that got past a check would fail here
and not in the test run; a crash is seen as the process dying; and forking the
confined HDF5 child from a small process costs milliseconds, not the tenth of a
second a process holding TensorFlow takes.

The mutations, each chosen at random per mutant: bytes flipped, a cut, junk
spliced in, a little-endian integer set to an extreme (the size fields of every
format), and per format the parts that matter: a Keras config's JSON values, the
HDF5 bytes near attributes, an ONNX tensor's type, dims and data, a torch
pickle, a safetensors header, a TF index resealed with fresh checksums (so that
its parser, not its checksum, meets the change), in a TF1 checkpoint and in a TF2
object-based one (its object graph a string tensor).
"""

from __future__ import annotations

import json
import resource
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from shared import port
from shared.files import confined
from tests import hostile_files as hf

MEMORY = 1536 << 20  # what the fuzz may add to its address space
EXTREMES = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 40, (1 << 63) - 1,
            (1 << 64) - 1]
HOSTILE_JSON = [None, True, -1, 0, 10 ** 30, 1.5, "", "x" * 300, [], {}, [[[[]]]], "LSTM",
                {"class_name": "LSTM"}, "os.system", "Lambda", {"module": "os"}]


# ---- the valid files ----

def valid(kind: str, folder: Path) -> Path:
    if kind == "keras":
        return hf.write_keras(folder / "valid.keras")
    if kind == "keras-h5":
        return hf.write_legacy_h5(folder / "valid.h5")
    if kind == "onnx":
        return hf.write_onnx(folder / "valid.onnx", hf.onnx_model())
    if kind == "torch":
        import torch

        module = torch.nn.Module()
        module.embedding, module.rnn = torch.nn.Embedding(5, 3), torch.nn.LSTM(3, 4)
        torch.save(module.state_dict(), folder / "valid.pt")
        return folder / "valid.pt"
    if kind == "safetensors":
        import safetensors.numpy

        w = hf.weights()
        tensors = {"embedding.weight": w["embedding"], "out.weight": w["dense_kernel"].T.copy(),
                   "out.bias": w["dense_bias"]}
        (folder / "valid.safetensors").write_bytes(safetensors.numpy.save(tensors))
        return folder / "valid.safetensors"
    if kind == "tf2":
        return hf.write_bundle(folder / "valid.ckpt", hf.tf2_tensors())
    return hf.write_bundle(folder / "valid.ckpt")


# ---- the mutations ----

def flip(raw: bytes, rng) -> bytes:
    out = bytearray(raw)
    for at in rng.integers(0, len(out), size=rng.integers(1, 5)):
        out[at] = rng.integers(0, 256)
    return bytes(out)


def cut(raw: bytes, rng) -> bytes:
    return raw[: rng.integers(0, len(raw))]


def splice(raw: bytes, rng) -> bytes:
    at = int(rng.integers(0, len(raw)))
    return raw[:at] + rng.bytes(int(rng.integers(1, 64))) + raw[at + int(rng.integers(0, 64)):]


def extreme(raw: bytes, rng) -> bytes:
    out = bytearray(raw)
    width = int(rng.choice([2, 4, 8]))
    at = int(rng.integers(0, max(1, len(out) - width)))
    value = int(rng.choice(EXTREMES)) % (1 << (8 * width))
    out[at : at + width] = value.to_bytes(width, "little")
    return bytes(out)


BYTES = (flip, cut, splice, extreme)


def any_bytes(raw: bytes, rng) -> bytes:
    return BYTES[int(rng.integers(0, len(BYTES)))](raw, rng)


def near(raw: bytes, rng, words: tuple[bytes, ...]) -> bytes:
    """Bytes changed within 64 of a word (an attribute's name: its message follows it)."""
    spots = []
    for word in words:
        at = raw.find(word)
        while at >= 0:
            spots.append(at)
            at = raw.find(word, at + 1)
    if not spots:
        return any_bytes(raw, rng)
    out = bytearray(raw)
    base = spots[int(rng.integers(0, len(spots)))]
    for at in base + rng.integers(-16, 64, size=rng.integers(1, 3)):
        if 0 <= at < len(out):
            out[at] = rng.integers(0, 256)
    return bytes(out)


def json_value(value, rng, depth: int = 0):
    """``value`` with one of its parts (at any depth) replaced by a hostile value."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[int(rng.integers(0, len(value)))]
        return {**value, key: json_value(value[key], rng, depth + 1)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        at = int(rng.integers(0, len(value)))
        return [*value[:at], json_value(value[at], rng, depth + 1), *value[at + 1 :]]
    return HOSTILE_JSON[int(rng.integers(0, len(HOSTILE_JSON)))]


def rezip(path: Path, out: Path, rng, change) -> None:
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(out, "w") as result:
        names = archive.namelist()
        chosen = names[int(rng.integers(0, len(names)))]
        method = zipfile.ZIP_DEFLATED if rng.random() < 0.2 else zipfile.ZIP_STORED
        for info in archive.infolist():
            data = archive.read(info)
            result.writestr(info.filename, change(info.filename, data) if info.filename == chosen
                            else data, method)


def mutant(kind: str, path: Path, out: Path, rng) -> Path:
    """Writes one mutant of the valid ``path`` to ``out`` (or its folder, for tf1 and tf2)."""
    raw = path.read_bytes() if kind not in ("tf1", "tf2") else b""
    choice = rng.random()
    if kind == "keras" and choice < 0.6:
        def change(name, data):
            if name == "config.json":
                return json.dumps(json_value(json.loads(data), rng))
            return near(data, rng, (b"name",)) if rng.random() < 0.5 else any_bytes(data, rng)
        rezip(path, out, rng, change)
    elif kind == "keras-h5" and choice < 0.6:
        out.write_bytes(near(raw, rng, (b"name", b"weight_names", b"model_config")))
    elif kind == "onnx" and choice < 0.6:
        out.write_bytes(onnx_mutant(rng))
    elif kind == "torch" and choice < 0.6:
        rezip(path, out, rng, lambda name, data: any_bytes(data, rng))
    elif kind == "safetensors" and choice < 0.5:
        length = int.from_bytes(raw[:8], "little")
        header = json_value(json.loads(raw[8 : 8 + length]), rng)
        text = json.dumps(header).encode()
        out.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length :])
    elif kind in ("tf1", "tf2"):
        folder = out.parent / out.stem
        folder.mkdir()
        prefix = folder / "model.ckpt"
        index = Path(f"{path}.index").read_bytes()
        data = Path(f"{path}.data-00000-of-00001").read_bytes()
        if choice < 0.7:
            index = any_bytes(index, rng)
            index = hf.reseal_index(index) if rng.random() < 0.7 else index
        else:
            data = any_bytes(data, rng)
        Path(f"{prefix}.index").write_bytes(index)
        Path(f"{prefix}.data-00000-of-00001").write_bytes(data)
        return prefix
    else:
        out.write_bytes(any_bytes(raw, rng))
    return out


def pick(rng, values: list):
    return values[int(rng.integers(0, len(values)))]


def onnx_mutant(rng) -> bytes:
    from onnx import helper

    model = hf.onnx_model(seed=int(rng.integers(0, 1000)))
    tensor = model.graph.initializer[int(rng.integers(0, len(model.graph.initializer)))]
    node = model.graph.node[int(rng.integers(0, len(model.graph.node)))]
    edits = [
        lambda: setattr(tensor, "data_type", int(rng.choice([0, 2, 7, 8, 11, 14, 999]))),
        lambda: tensor.dims.extend([int(rng.choice(EXTREMES[:8]))]),
        lambda: tensor.dims.__setitem__(0, int(rng.choice(EXTREMES[:9]))),
        lambda: setattr(tensor, "raw_data", tensor.raw_data[: int(rng.integers(0, 40))]),
        lambda: setattr(node, "op_type", str(rng.choice(["LSTM", "GRU", "Gemm", "MatMul", "X"]))),
        lambda: setattr(node, "domain", str(rng.choice(["", "ai.onnx", "com.evil"]))),
        lambda: node.input.__delitem__(slice(int(rng.integers(0, len(node.input) + 1)), None)),
        lambda: node.output.__delitem__(slice(0, None)),
        lambda: node.attribute.extend([helper.make_attribute(
            pick(rng, ["hidden_size", "direction", "activations", "clip", "linear_before_reset",
                       "value"]), pick(rng, [0, 1, 2.5, "reverse", "x", [1, 2], ["Relu"]]))]),
        lambda: tensor.external_data.add(key="location", value=str(
            rng.choice(["../x", "/etc/passwd", "w.bin", ""]))),
    ]
    for _ in range(int(rng.integers(1, 3))):
        edits[int(rng.integers(0, len(edits)))]()
    raw = model.SerializeToString()
    return any_bytes(raw, rng) if rng.random() < 0.3 else raw


# ---- the run ----

def outcome(kind: str, src: Path, dst: Path) -> str:
    """"ok", "refused", or the finding: an exception of another kind, or a bad message."""
    try:
        source = port.read(str(src))
        port.write(source, "torch", str(dst))
    except port.PortError as error:
        message = str(error)
        if "\n" in message or str(src) not in message:
            return f"finding: a refusal that is not one line naming the file: {message[:300]}"
        return "refused"
    except Exception as error:
        return f"finding: {type(error).__name__}: {str(error)[:300]}"
    return "ok"


def run(kind: str, seed: int, count: int, folder: Path) -> dict:
    import h5py  # noqa: F401  (imported now: a mutant read as ONNX or HDF5 times the read,
    import onnx  # noqa: F401   not the import)

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (confined._virtual_bytes() + MEMORY, hard))
    confined.TIME_LIMIT = 5.0  # a slow mutant is cut short: still one refusal
    rng = np.random.default_rng(seed)
    good = valid(kind, folder)
    assert outcome(kind, good, folder / "good.out.safetensors") == "ok", "the valid file fails"
    counts: dict[str, int] = {}
    findings, slowest, child_peak = [], 0.0, 0
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for number in range(count):
        src = mutant(kind, good, folder / f"m{number}{good.suffix}", rng)
        started = time.perf_counter()
        confined.last_child.clear()
        result = outcome(kind, src, folder / f"m{number}.out.safetensors")
        slowest = max(slowest, time.perf_counter() - started)
        child_peak = max(child_peak, confined.last_child.get("peak_bytes", 0))
        key = "finding" if result.startswith("finding") else result
        counts[key] = counts.get(key, 0) + 1
        if key == "finding":
            findings.append(f"mutant {number}: {result}")
    own = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_rss) * 1024
    peak = max(own, child_peak)
    return {"kind": kind, "counts": counts, "findings": findings[:10], "slowest": slowest,
            "peak_bytes": peak}


if __name__ == "__main__":
    kind, seed, count, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    print(json.dumps(run(kind, seed, count, Path(folder))))
