"""Checkpoints that are valid but unusual, and files built to hurt the loader.

A valid file must load whatever its header length is (its first byte is that
length's low byte, and 0x80 is also pickle's first byte); a hostile file must be
refused with one line naming it, before the loader reads or allocates what the
file asks for: junk after the data, a huge header, JSON nested 100000 deep,
numbers of 5000 digits, billions of layers, NaN weights behind a valid checksum.
"""

from __future__ import annotations

import json
import os
import struct
import tracemalloc

import numpy as np
import pytest
import safetensors

from shared.checkpoint import load_checkpoint, save_checkpoint
from shared.checkpoint.format import MAX_HEADER_BYTES, MAX_LAYERS, MAX_TENSORS
from shared.checkpoint.training_state import SLOTS
from shared.core.config import ATTENTIONS, CELLS, Seq2SeqConfig
from shared.files.safe import MAX_DEPTH
from shared.layout import canonical_shapes, random_weights
from tests.checkpoint_files import (
    adam_state,
    edit_config,
    edit_metadata,
    join,
    make_parts,
    read_header,
    reseal,
    rewrite_header,
    split,
)
from tests.refusal import checkpoint_refusal


def assert_loads_the_same(path, weights):
    loaded = load_checkpoint(path)
    for name, value in weights.items():
        assert loaded.weights[name].tobytes() == value.tobytes(), f"{name} changed in {path}"


@pytest.fixture
def small(tmp_path):
    """(path, weights) of a saved one-layer checkpoint."""
    weights, *rest = make_parts(num_layers=1, bidirectional=False)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, weights, *rest)
    return path, weights


# ---- recognised by its structure, whatever its first byte ----


def test_every_header_length_save_can_write_loads_back(tmp_path):
    """The first byte is N % 256; safetensors pads N to a multiple of 8, so 32 values occur.

    A longer target word makes the header longer: 8 more letters, the next multiple.
    """
    low_bytes = set()
    for extra in range(0, 256, 8):
        weights, *rest = make_parts(num_layers=1, bidirectional=False, extra_word="w" * (1 + extra))
        path = tmp_path / f"model-{extra}.safetensors"
        save_checkpoint(path, weights, *rest)
        low_bytes.add(path.read_bytes()[0])
        assert_loads_the_same(path, weights)
    assert low_bytes == set(range(0, 256, 8)), sorted(set(range(0, 256, 8)) - low_bytes)


def test_every_other_low_byte_loads_after_re_padding(small, tmp_path):
    """Spaces after the header's JSON (which safetensors allows) move N to every low byte."""
    path, weights = small
    header, data = split(path.read_bytes())
    text = header.rstrip(b" ")
    for low_byte in range(256):
        padded = text + b" " * ((low_byte - len(text)) % 256)
        repadded = tmp_path / f"repadded-{low_byte}.safetensors"
        repadded.write_bytes(join(padded, data))
        assert repadded.read_bytes()[0] == low_byte
        assert_loads_the_same(repadded, weights)


def test_a_header_length_of_0x80_is_not_taken_for_a_pickle(small):
    path, weights = small
    header, data = split(path.read_bytes())
    text = header.rstrip(b" ")
    path.write_bytes(join(text + b" " * ((0x80 - len(text)) % 256), data))
    assert path.read_bytes()[:1] == b"\x80"
    assert_loads_the_same(path, weights)


def test_an_hdf5_file_is_named_as_such(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    assert "is an HDF5 file (a Keras .h5?)" in checkpoint_refusal(path)


# ---- sizes checked before anything is read ----


def _refusal_and_peak(path) -> tuple[str, int]:
    """The loader's refusal and the most memory it allocated on the way."""
    tracemalloc.start()
    try:
        message = checkpoint_refusal(path)
        return message, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _sparse_header(path, length: int):
    """A file whose header claims ``length`` bytes and opens with '{', then zeros that fit it.

    The file is sparse: its zeros cost no disk, only a reader that reads them pays.
    """
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", length) + b"{")
    os.truncate(path, length + 64)
    return path


def test_junk_after_the_data_is_refused_without_reading_it(small):
    """1 GiB of junk, as a sparse file: it costs no disk, and reading it would cost 1 GiB."""
    path, _ = small
    size = path.stat().st_size
    os.truncate(path, size + 2**30)
    message, peak = _refusal_and_peak(path)
    assert f"has {2**30} unexpected bytes after the tensor data" in message, message
    assert peak < 2**20, f"the loader allocated {peak} bytes for a {size}-byte checkpoint"


def test_a_header_longer_than_the_cap_is_refused_without_reading_it(tmp_path):
    path = _sparse_header(tmp_path / "huge.safetensors", MAX_HEADER_BYTES + 8)
    message, peak = _refusal_and_peak(path)
    assert f"its header claims {MAX_HEADER_BYTES + 8} bytes" in message, message
    assert peak < 2**20, f"the loader allocated {peak} bytes"


def test_a_header_length_past_the_end_is_truncation(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b'{"__metadata__": {}}')
    message = checkpoint_refusal(path)
    assert "is truncated: its header is 1000 bytes long but only 20 bytes follow" in message


# ---- strict JSON in the header and in the metadata ----

DEEP = "[" * 100_000
DIGITS = "7" * 5000


def _raw_header(path, text: str):
    """Replaces the header with ``text`` (padded), keeping the data section."""
    data = split(path.read_bytes())[1]
    header = text.encode()
    path.write_bytes(join(header + b" " * (-len(header) % 8), data))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('{"a": ' + DEEP, f"header nests JSON deeper than {MAX_DEPTH} levels"),
        ('{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", "header nests JSON deeper"),
        ('{"a": ' + DIGITS + "}", "header holds a number written with 5000 characters"),
        ('{"a": NaN}', "header holds NaN, which is not JSON"),
        ('{"a": 1e999}', "header holds the number 1e999, too large for a float"),
        ('{"a": 1, "a": 2}', "header repeats the key 'a' in one JSON object"),
    ],
    ids=["100000 brackets", "one level too deep", "5000 digits", "NaN", "1e999", "repeated key"],
)
def test_a_hostile_header_is_refused_in_one_line(small, header, reason):
    path, _ = small
    _raw_header(path, header)
    message = checkpoint_refusal(path)
    assert reason in message, message


def test_data_offsets_of_5000_digits_are_refused(small):
    path, _ = small
    header, _ = read_header(path)
    name = next(key for key in header if key != "__metadata__")
    text = json.dumps(header).replace(
        json.dumps(header[name]["data_offsets"]), f"[0, {DIGITS}]", 1
    )
    _raw_header(path, text)
    assert "header holds a number written with 5000 characters" in checkpoint_refusal(path)


@pytest.mark.parametrize("key", ["config", "src_tokenizer", "tgt_tokenizer"])
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (DEEP, f"nests JSON deeper than {MAX_DEPTH} levels"),
        ('{"hidden_size": ' + DIGITS + "}", "holds a number written with 5000 characters"),
    ],
    ids=["100000 brackets", "5000 digits"],
)
def test_hostile_json_in_the_metadata_is_refused_in_one_line(small, key, text, reason):
    path, _ = small
    edit_metadata(path, **{key: text})
    message = checkpoint_refusal(path)
    assert f"metadata {key!r} {reason}" in message, message


# ---- what the header and config may ask for ----


def test_a_config_of_too_many_layers_is_refused_before_its_names_are_listed(small):
    path, _ = small
    edit_config(path, num_layers=MAX_LAYERS + 1)
    assert (
        f"metadata 'config' asks for {MAX_LAYERS + 1} layers; a checkpoint holds at most"
        f" {MAX_LAYERS}"
    ) in checkpoint_refusal(path)


def test_save_refuses_what_load_would_refuse(tmp_path):
    config = Seq2SeqConfig(8, 10, 1, 1, num_layers=MAX_LAYERS + 1)
    _, _, src, tgt = make_parts(num_layers=1, bidirectional=False)
    with pytest.raises(ValueError, match=rf"num_layers is {MAX_LAYERS + 1}; a checkpoint holds"):
        save_checkpoint(tmp_path / "m.safetensors", random_weights(config), config, src, tgt)
    assert os.listdir(tmp_path) == []


def test_the_largest_checkpoint_save_writes_loads_back(tmp_path):
    """MAX_LAYERS bidirectional LSTM layers with Bahdanau attention and Adam's two slots: the
    most tensors the caps let through, saved and loaded back bit for bit."""
    _, _, src, tgt = make_parts(num_layers=1, bidirectional=False)
    config = Seq2SeqConfig(len(src), len(tgt), 1, 1, num_layers=MAX_LAYERS, bidirectional=True,
                           attention="bahdanau")
    weights = random_weights(config, seed=5)
    training = adam_state(config)
    assert len(weights) * (1 + len(training.optimizer.slots)) == MAX_TENSORS
    path = tmp_path / "deep.safetensors"
    save_checkpoint(path, weights, config, src, tgt, training=training)
    assert_loads_the_same(path, weights)
    loaded = load_checkpoint(path).training.optimizer.slots
    for slot, arrays in training.optimizer.slots.items():
        assert all(loaded[slot][k].tobytes() == arrays[k].tobytes() for k in arrays), slot


def test_max_tensors_is_the_most_tensors_of_any_config_save_accepts():
    """Counted over every cell, attention and direction, not only the config format.py picks,
    each weight with the slots of the optimizer that keeps the most."""
    counts = {
        (cell, attention, bidirectional): len(canonical_shapes(Seq2SeqConfig(
            4, 4, 1, 1, num_layers=MAX_LAYERS, bidirectional=bidirectional, cell=cell,
            attention=attention)))
        for cell in CELLS for attention in ATTENTIONS for bidirectional in (False, True)
    }
    largest = max(counts, key=counts.get)
    slots = max(len(kept) for kept in SLOTS.values())
    assert counts[largest] * (1 + slots) == MAX_TENSORS, f"{largest} has {counts[largest]} weights"


@pytest.mark.parametrize("extra", [0, 1], ids=["at the limit", "one over"])
def test_a_header_of_too_many_tensors_is_refused(small, extra):
    """MAX_TENSORS tensors pass the count (and are refused later: their names are not the
    config's); one more is refused before any tensor is read."""
    path, _ = small

    def crowd(header):
        for k in range(MAX_TENSORS + extra - (len(header) - 1)):
            header[f"t{k}"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
        assert len(header) - 1 == MAX_TENSORS + extra

    rewrite_header(path, crowd)
    reseal(path)
    message = checkpoint_refusal(path)
    limit = f"header describes {MAX_TENSORS + 1} tensors; a checkpoint holds at most {MAX_TENSORS}"
    assert (limit in message) == bool(extra), message
    assert extra or "the tensors do not match the stored config" in message, message


def test_the_header_limit_is_the_safetensors_librarys_own(tmp_path):
    """A header length the library refuses is the first we refuse (MAX_HEADER_BYTES + 1)."""
    for length, refused in ((MAX_HEADER_BYTES + 1, True), (MAX_HEADER_BYTES, False)):
        path = _sparse_header(tmp_path / f"header-{length}.safetensors", length)
        with pytest.raises(safetensors.SafetensorError) as caught:
            safetensors.safe_open(str(path), "numpy")
        assert ("header too large" in str(caught.value)) is refused, (length, str(caught.value))
        path.unlink()


# ---- weights and configs that parse but are wrong, or old ----


def test_nan_weights_behind_a_valid_checksum_are_named_not_finite(small):
    path, _ = small
    header, start = read_header(path)
    raw = bytearray(path.read_bytes())
    begin = start + header["decoder.output.b"]["data_offsets"][0]
    raw[begin : begin + 4] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(raw))
    reseal(path)
    message = checkpoint_refusal(path)
    assert (
        "the weights are not finite: tensor 'decoder.output.b' holds 1 NaN/inf of 10 values"
    ) in message, message


@pytest.mark.parametrize(("field", "default"), [("cell", "lstm"), ("attention", "none")])
def test_a_checkpoint_from_before_a_config_field_loads_with_its_default(small, field, default):
    """Checkpoints written before the cell, then the attention, existed are still read."""
    path, weights = small
    edit_config(path, **{field: None})
    assert field not in json.loads(read_header(path)[0]["__metadata__"]["config"])
    loaded = load_checkpoint(path)
    assert getattr(loaded.config, field) == default
    assert_loads_the_same(path, weights)


def test_a_config_asking_for_attention_without_its_weights_is_refused(small):
    path, _ = small
    edit_config(path, attention="bahdanau")
    message = checkpoint_refusal(path)
    assert "the tensors do not match the stored config" in message, message
    assert "4 missing: decoder.attention.W_1, decoder.attention.W_2" in message, message
