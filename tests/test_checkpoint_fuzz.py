"""A seeded fuzz test of the checkpoint loader: every outcome is a load or a CheckpointError.

Thousands of mutations of two small valid checkpoints (an LSTM and a GRU): bytes
flipped anywhere, the length prefix rewritten, cuts, junk appended or spliced in,
re-padding, and edits of the header's and the metadata's JSON, half of them
resealed with a recomputed checksum so that they reach the checks after it.  The
loader may load a file (and must, after re-padding: that leaves a valid one) or
refuse it with one line naming it; anything else (a RecursionError, a bare
ValueError from a 5000-digit number, an OverflowError from a shape, a hang) fails
the test with the mutation that caused it and the seed to replay it.
"""

from __future__ import annotations

import json
import struct
from collections import Counter

import numpy as np
import pytest

from shared.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from shared.checkpoint.format import digest
from tests.checkpoint_files import join, make_parts, repad, split

SEED = 10
ROUNDS = 3000


def _flip_bytes(raw, rng):
    mutated = bytearray(raw)
    for position in rng.integers(0, len(raw), size=rng.integers(1, 5)):
        mutated[position] = rng.integers(0, 256)
    return bytes(mutated)


def _new_length(raw, rng):
    size = struct.unpack("<Q", raw[:8])[0]
    length = rng.choice([rng.integers(0, 2**63), size + rng.integers(-16, 17), 0x80 + 256 * 3])
    return struct.pack("<Q", int(length) % 2**64) + raw[8:]


def _cut(raw, rng):
    return raw[: rng.integers(0, len(raw))]


def _append(raw, rng):
    return raw + rng.bytes(int(rng.integers(1, 65)))


def _splice(raw, rng):
    begin = int(rng.integers(0, len(raw)))
    end = begin + int(rng.integers(0, 32))
    return raw[:begin] + rng.bytes(int(rng.integers(0, 32))) + raw[end:]


def _repad(raw, rng):
    # Half the time a low byte that starts another format: pickle's 0x80, zip's "P", HDF5's 0x89.
    low_byte = rng.choice([0x80, 0x50, 0x89]) if rng.random() < 0.5 else rng.integers(0, 256)
    return repad(raw, int(low_byte))


# Texts json.dumps cannot write (Python's own parser recurses on the one, and int()
# refuses the other), put in place of their placeholders once the header is a string.
_PLACEHOLDERS = {'"<deep>"': "[" * 5000 + "]" * 5000, '"<digits>"': "7" * 5000}


def _hostile_value(rng):
    """A JSON value a stranger might put anywhere in a header."""
    nested: list = []
    for _ in range(int(rng.integers(1, 120))):
        nested = [nested]
    pool = [None, True, -1, 0, 1, 2**64, 10**400, 1.5, float("nan"), 1e308, "", "F16", "F32",
            [], {}, [0, 2**70], [-4, 4], "x" * 200, nested, {"dtype": "F32"}, [2, 3], "lstm",
            *(text.strip('"') for text in _PLACEHOLDERS)]
    return pool[int(rng.integers(0, len(pool)))]


def _dumps(value) -> str:
    text = json.dumps(value)
    for placeholder, hostile in _PLACEHOLDERS.items():
        text = text.replace(placeholder, hostile)
    return text


def _edit_tree(value, rng):
    """``value`` with one random change somewhere inside it."""
    if isinstance(value, dict) and value and rng.random() < 0.75:
        key = list(value)[int(rng.integers(0, len(value)))]
        choice = rng.random()
        if choice < 0.6:
            return {**value, key: _edit_tree(value[key], rng)}
        if choice < 0.8:
            return {k: v for k, v in value.items() if k != key}
        return {**value, f"{key}x": _hostile_value(rng)}
    if isinstance(value, list) and value and rng.random() < 0.75:
        index = int(rng.integers(0, len(value)))
        return [*value[:index], _edit_tree(value[index], rng), *value[index + 1 :]]
    return _hostile_value(rng)


def _with_header(header, data, tensors, rng):
    """A file of this header; resealed half of the time, as a buggy writer would."""
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if rng.random() < 0.5 and isinstance(metadata, dict) and all(
        isinstance(v, str) for v in metadata.values()
    ):
        header = {**header, "__metadata__": {**metadata, "sha256": digest(tensors, metadata)}}
    text = _dumps(header).encode()
    return join(text + b" " * (-len(text) % 8), data)


def _edit_header(raw, rng, tensors):
    header, data = split(raw)
    return _with_header(_edit_tree(json.loads(header), rng), data, tensors, rng)


def _edit_metadata_json(raw, rng, tensors):
    """A change inside the config's or a tokenizer's JSON text."""
    header, data = split(raw)
    header = json.loads(header)
    key = ["config", "src_tokenizer", "tgt_tokenizer"][int(rng.integers(0, 3))]
    inner = _edit_tree(json.loads(header["__metadata__"][key]), rng)
    header["__metadata__"] = {**header["__metadata__"], key: _dumps(inner)}
    return _with_header(header, data, tensors, rng)


MUTATIONS = {
    "flip bytes": _flip_bytes,
    "new length prefix": _new_length,
    "cut": _cut,
    "append junk": _append,
    "splice junk": _splice,
    "re-pad": _repad,
    "edit header JSON": _edit_header,
    "edit metadata JSON": _edit_metadata_json,
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """(bytes, tensors) of a small LSTM and a small GRU checkpoint."""
    folder = tmp_path_factory.mktemp("fuzz")
    result = []
    for cell in ("lstm", "gru"):
        parts = make_parts(num_layers=1, bidirectional=cell == "gru", cell=cell)
        path = folder / f"{cell}.safetensors"
        save_checkpoint(path, *parts)
        result.append((path.read_bytes(), load_checkpoint(path).weights))
    return result


def test_every_mutation_loads_or_is_refused_in_one_line(originals, tmp_path):
    rng = np.random.default_rng(SEED)
    path = tmp_path / "fuzzed.safetensors"
    outcomes, reasons, failures = Counter(), Counter(), []
    names = list(MUTATIONS)
    for round_ in range(ROUNDS):
        raw, tensors = originals[round_ % len(originals)]
        name = names[int(rng.integers(0, len(names)))]
        mutate = MUTATIONS[name]
        path.write_bytes(mutate(raw, rng, tensors) if name.startswith("edit") else mutate(raw, rng))
        try:
            load_checkpoint(path)
        except CheckpointError as error:
            message = str(error)
            if not message.startswith(f"checkpoint {path}: ") or "\n" in message:
                failures.append(f"round {round_} ({name}): not one line naming the file: {message}")
            if name == "re-pad":  # spaces after the JSON leave a valid file
                failures.append(f"round {round_} ({name}): a valid file was refused: {message}")
            outcomes["refused"] += 1
            reasons[message.split(": ", 2)[1][:40]] += 1
        except Exception as error:  # the finding: report it, with the round to replay
            failures.append(f"round {round_} ({name}): {type(error).__name__}: {error}"[:300])
        else:
            outcomes["loaded"] += 1
    assert not failures, f"{len(failures)} of {ROUNDS} (seed {SEED}): " + "; ".join(failures[:5])
    assert outcomes["loaded"] > 0 and outcomes["refused"] > ROUNDS // 2, outcomes
    assert len(reasons) >= 15, f"the mutations reached only these checks: {sorted(reasons)}"
