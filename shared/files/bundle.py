"""TensorFlow checkpoints (``tf.train.Saver``, ``tf.train.Checkpoint``), read without TensorFlow.

TensorFlow's own reader is C++ that trusts the index: a FIFO as a data shard
blocks it forever, and index entries that disagree with the data are met with
whatever the C++ does.  A checkpoint is a simple format, so it is read here,
in Python, with every size checked before it is used:

    PREFIX.index                  a LevelDB table (sorted keys, blocks, a 48-byte
                                  footer): key "" holds a BundleHeaderProto
                                  (num_shards, endianness), every other key a
                                  tensor's name and its BundleEntryProto (dtype,
                                  shape, shard_id, offset, size, crc32c)
    PREFIX.data-00000-of-00001    the tensors' bytes, little-endian, one after another

What is checked: the index and every shard are regular files (opened without
blocking); the index is at most ``MAX_INDEX_BYTES``, its footer's magic number
right, every block inside the file, uncompressed (TensorFlow writes them so)
and matching its CRC-32C; at most ``MAX_PARTS`` entries, keys strictly sorted;
the header little-endian with 1 to ``MAX_SHARDS`` shards; each entry's dtype
known, its shape's bytes within the cap and equal to its ``size``, its range
inside its shard, and (once read) its bytes matching its CRC-32C.  A
partitioned variable (slices) is refused by name.  Strings (``DT_STRING``, as
in ``_CHECKPOINTABLE_OBJECT_GRAPH``) are read as an object array of ``bytes``.

Example:

    bundle = read_bundle("model.ckpt")          # PREFIX: model.ckpt.index beside it
    bundle.shapes                                # {name: shape}, every entry
    bundle.read("rnn/lstm_cell/kernel")          # a NumPy array, checked
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from shared.files.crc32c import crc32c, masked
from shared.files.limits import MAX_FILE_BYTES, MAX_PARTS, declared_bytes
from shared.files.safe import FileRefusedError, open_regular, read_exactly, read_regular, shown

MAX_INDEX_BYTES = 256 << 20
MAX_SHARDS = 10_000
FOOTER = 48
MAGIC = 0xDB4775248B80FB57
# TensorFlow's DataType numbers -> NumPy dtypes (bfloat16: read as uint16, widened).
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 8: "<c8", 9: "<i8",
          10: "?", 14: "bfloat16", 17: "<u2", 18: "<c16", 19: "<f2", 22: "<u4", 23: "<u8"}
STRING = 7
DTYPE_NAMES = {7: "string", 20: "resource", 21: "variant"}


@dataclass
class Entry:
    """One tensor of the index: where its bytes are and what they are."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int | None
    sliced: bool = False


@dataclass
class Bundle:
    """A checkpoint's index, checked; ``read(name)`` reads one tensor, checked.

    Attributes:
        prefix: the checkpoint prefix, as messages name it.
        entries: {name: Entry}, in the index's (sorted) order.
        shapes: {name: shape}.
    """

    prefix: str
    entries: dict[str, Entry]
    shards: list[str]
    sizes: list[int] = field(default_factory=list)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: entry.shape for name, entry in self.entries.items()}

    def dtype_name(self, name: str) -> str:
        dtype = self.entries[name].dtype
        return DTYPES.get(dtype) or DTYPE_NAMES.get(dtype, f"DataType {dtype}")

    def read(self, name: str):
        """The tensor ``name``: a NumPy array (of ``bytes`` objects for a string tensor).

        Raises:
            FileRefusedError: no such tensor, a type that is not read, or its bytes do not
                match the index (size, CRC-32C).
        """
        entry = self.entries.get(name)
        if entry is None:
            raise FileRefusedError(self.prefix, f"holds no tensor {name!r}")
        if entry.dtype not in DTYPES and entry.dtype != STRING:
            raise FileRefusedError(self.prefix, f"tensor {name[:200]!r} holds "
                                                f"{self.dtype_name(name)} values, which are not "
                                                "read")
        shard = self.shards[entry.shard]
        with open_regular(shard, "TF checkpoint data shard") as (file, size):
            if entry.offset + entry.size > size:
                raise FileRefusedError(shard, f"tensor {name!r} lies at bytes {entry.offset} to "
                                              f"{entry.offset + entry.size} but the shard holds "
                                              f"{size} (truncated?)")
            file.seek(entry.offset)
            data = read_exactly(file, entry.size, shard)
        # A string tensor's checksum runs over its lengths as fixed-size numbers, not over
        # the varints stored: ``_strings`` checks it with its layout.
        if entry.crc is not None and entry.dtype != STRING and masked(crc32c(data)) != entry.crc:
            raise FileRefusedError(shard, f"tensor {name!r} does not match its checksum "
                                          "(CRC-32C): the data is corrupted")
        if entry.dtype == STRING:
            return np.array(_strings(data, entry, shard), dtype=object).reshape(entry.shape)
        if entry.dtype == 14:  # bfloat16: the high half of a float32
            return (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32) \
                .reshape(entry.shape)
        return np.frombuffer(data, DTYPES[entry.dtype]).reshape(entry.shape).copy()


def read_bundle(prefix: str | os.PathLike) -> Bundle:
    """The checked index of the checkpoint at ``prefix`` (``prefix.index`` and its shards).

    Raises:
        FileRefusedError: one line naming the file: missing, not regular, too large,
            damaged, or a rule of the module docstring broken.
    """
    prefix = os.fspath(prefix)
    index = prefix + ".index"
    data = read_regular(index, "TF checkpoint index", MAX_INDEX_BYTES)
    where = shown(index)
    records = _table(where, data)
    if not records or records[0][0] != b"":
        raise FileRefusedError(where, "has no header entry (the empty key); not a TF checkpoint "
                                      "index")
    shards = _header(where, records[0][1])
    entries = {}
    for key, value in records[1:]:
        name = key.decode("utf-8", "replace")
        entries[name] = _entry(where, name, value, shards)
    total = 0
    for entry in entries.values():
        total += entry.size
        if total > MAX_FILE_BYTES:
            raise FileRefusedError(where, f"describes more than {MAX_FILE_BYTES} bytes of "
                                          "tensors; at most that many are read")
    names = [f"{prefix}.data-{shard:05d}-of-{shards:05d}" for shard in range(shards)]
    sizes = []
    for shard_name in names:  # each shard a regular file, sized, before any tensor is read
        with open_regular(shard_name, "TF checkpoint data shard") as (_, size):
            sizes.append(size)
    for entry in entries.values():
        if entry.offset + entry.size > sizes[entry.shard]:
            raise FileRefusedError(
                shown(names[entry.shard]),
                f"tensor {entry.name!r} lies at bytes {entry.offset} to "
                f"{entry.offset + entry.size} but the shard holds {sizes[entry.shard]} "
                "(truncated, or an index that does not belong to it)")
    return Bundle(shown(prefix), entries, names, sizes)


# ---- the LevelDB table ----

def _varint(data, position: int, where: str, limit: int = 10) -> tuple[int, int]:
    result = 0
    for shift in range(0, 7 * limit, 7):
        if position >= len(data):
            break
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
    raise FileRefusedError(where, "holds a damaged number (varint); the index is corrupted")


def _table(where: str, data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the table, in order: the index block leads to the data blocks."""
    if len(data) < FOOTER or int.from_bytes(data[-8:], "little") != MAGIC:
        raise FileRefusedError(where, "is not a TF checkpoint index (no LevelDB table footer); "
                                      "damaged or another file")
    footer = data[-FOOTER:]
    _, position = _varint(footer, 0, where)
    _, position = _varint(footer, position, where)  # the metaindex: nothing in it is used
    records: list[tuple[bytes, bytes]] = []
    for _, handle in _entries(where, _block(where, data, footer[position:])):
        records.extend(_entries(where, _block(where, data, handle)))
        if len(records) > MAX_PARTS:
            raise FileRefusedError(where, f"holds more than {MAX_PARTS} entries")
    keys = [key for key, _ in records]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise FileRefusedError(where, "holds keys out of order or twice (corrupted)")
    return records


def _block(where: str, data: bytes, handle: bytes) -> bytes:
    """The block a handle (offset, size) points to, once its trailer's checksum matches."""
    offset, position = _varint(handle, 0, where)
    size, _ = _varint(handle, position, where)
    if offset + size + 5 > len(data):
        raise FileRefusedError(where, f"points to a block at bytes {offset} to {offset + size} "
                                      f"beyond its {len(data)} bytes (truncated?)")
    kind = data[offset + size]
    stored = int.from_bytes(data[offset + size + 1 : offset + size + 5], "little")
    if kind != 0:
        raise FileRefusedError(where, f"has a block compressed with method {kind}; TensorFlow "
                                      "writes checkpoint indexes uncompressed")
    if masked(crc32c(data[offset : offset + size + 1])) != stored:
        raise FileRefusedError(where, "has a block that does not match its checksum (CRC-32C): "
                                      "the index is corrupted")
    return data[offset : offset + size]


def _entries(where: str, block: bytes) -> list[tuple[bytes, bytes]]:
    """A block's (key, value) pairs: keys share a prefix with the one before."""
    if len(block) < 4:
        raise FileRefusedError(where, "has a block too short to be one (corrupted)")
    restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * restarts
    if restarts < 1 or end < 0:
        raise FileRefusedError(where, "has a block with a damaged restart table (corrupted)")
    found, key, position = [], b"", 0
    while position < end:
        shared, position = _varint(block, position, where, 5)
        unshared, position = _varint(block, position, where, 5)
        length, position = _varint(block, position, where, 5)
        if shared > len(key) or position + unshared + length > end:
            raise FileRefusedError(where, "has a damaged entry (corrupted)")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        found.append((key, block[position : position + length]))
        position += length
        if len(found) > MAX_PARTS:
            raise FileRefusedError(where, f"holds more than {MAX_PARTS} entries")
    return found


# ---- the protocol buffers in it ----

def _fields(where: str, data: bytes, what: str) -> dict[int, list]:
    """A protobuf message's fields: {number: [values]}; bytes for length-delimited ones."""
    fields: dict[int, list] = {}
    position = 0
    while position < len(data):
        tag, position = _varint(data, position, where)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = _varint(data, position, where)
        elif wire == 1:
            value, position = int.from_bytes(data[position : position + 8], "little"), position + 8
        elif wire == 2:
            length, position = _varint(data, position, where)
            value, position = data[position : position + length], position + length
        elif wire == 5:
            value, position = int.from_bytes(data[position : position + 4], "little"), position + 4
        else:
            raise FileRefusedError(where, f"has a damaged {what} (wire type {wire})")
        if position > len(data):
            raise FileRefusedError(where, f"has a truncated {what} (corrupted)")
        fields.setdefault(number, []).append(value)
    return fields


def _one(fields: dict, number: int, default: int = 0) -> int:
    return fields.get(number, [default])[-1]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _header(where: str, value: bytes) -> int:
    fields = _fields(where, value, "header (BundleHeaderProto)")
    shards, endianness = _one(fields, 1), _one(fields, 2)
    if endianness != 0:
        raise FileRefusedError(where, "holds a big-endian checkpoint; only little-endian ones "
                                      "(every common machine's) are read")
    if not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise FileRefusedError(where, f"says the checkpoint has {str(shards)[:20]} data shards; "
                                      f"expected 1 to {MAX_SHARDS}")
    return shards


def _entry(where: str, name: str, value: bytes, shards: int) -> Entry:
    what = f"entry {name[:200]!r}"
    fields = _fields(where, value, what)
    dtype = _one(fields, 1)
    dims = []
    for shape in fields.get(2, [])[-1:]:
        if not isinstance(shape, bytes):
            raise FileRefusedError(where, f"{what} has a damaged shape")
        shape_fields = _fields(where, shape, what)
        if _one(shape_fields, 3):
            raise FileRefusedError(where, f"{what} has an unknown rank")
        for dim in shape_fields.get(2, []):
            if not isinstance(dim, bytes):
                raise FileRefusedError(where, f"{what} has a damaged shape")
            dims.append(_signed(_one(_fields(where, dim, what), 1)))
    shard, offset, size = _one(fields, 3), _one(fields, 4), _one(fields, 5)
    crc = fields[6][-1] if 6 in fields else None
    if not all(isinstance(v, int) for v in (dtype, shard, offset, size)):
        raise FileRefusedError(where, f"{what} is damaged")
    entry = Entry(name, dtype, tuple(dims), shard, offset, size, crc, sliced=7 in fields)
    if entry.sliced:
        raise FileRefusedError(where, f"{what} is a partitioned variable (saved in slices); "
                                      "only whole variables are read")
    if shard >= shards:
        raise FileRefusedError(where, f"{what} lies in data shard {shard} of {shards}")
    if dtype in DTYPES:
        itemsize = 2 if DTYPES[dtype] == "bfloat16" else np.dtype(DTYPES[dtype]).itemsize
        nbytes = declared_bytes(entry.shape, itemsize, what, where)
        if nbytes != size:
            raise FileRefusedError(where, f"{what} has shape {entry.shape} of {nbytes} bytes but "
                                          f"its data is {size} bytes; the index does not match "
                                          "the data")
    elif dtype == STRING:
        declared_bytes(entry.shape, 1, what, where)
        declared_bytes((size,), 1, what, where)
    return entry


def _strings(data: bytes, entry: Entry, where: str) -> list[bytes]:
    """A string tensor's layout: varint lengths, a 4-byte checksum of them, then the strings.

    TensorFlow's checksums (``WriteStringTensor``): the 4 bytes are the masked CRC-32C of
    the lengths written as little-endian numbers (4 bytes each, 8 from 4 GiB up); the
    entry's runs on over those 4 bytes and then the strings.
    """
    count = int(np.prod(entry.shape, dtype=np.int64)) if entry.shape else 1
    if count > len(data):  # each length takes a byte at least
        raise FileRefusedError(where, f"string tensor {entry.name!r} does not match its size")
    lengths, position = [], 0
    for _ in range(count):
        length, position = _varint(data, position, where)
        lengths.append(length)
    header = bytes(data[position : position + 4])
    position += 4
    if position + sum(lengths) != len(data):
        raise FileRefusedError(where, f"string tensor {entry.name!r} does not match its size")
    as_numbers = b"".join(n.to_bytes(4 if n < 1 << 32 else 8, "little") for n in lengths)
    if entry.crc is not None and (
            masked(crc32c(as_numbers)).to_bytes(4, "little") != header
            or masked(crc32c(as_numbers + header + bytes(data[position:]))) != entry.crc):
        raise FileRefusedError(where, f"string tensor {entry.name!r} does not match its "
                                      "checksum (CRC-32C): the data is corrupted")
    found = []
    for length in lengths:
        found.append(bytes(data[position : position + length]))
        position += length
    return found
