"""Checkpoint files: a model's weights, config and tokenizers in one framework-neutral file.

``save_checkpoint`` writes the canonical weights (``shared.layout``, what each
backend's ``export_weights`` returns), the ``Seq2SeqConfig`` and both tokenizers to
one ``.safetensors`` file; ``load_checkpoint`` reads it back as a ``Checkpoint``.
Neither knows which framework trained the model, so a file saved from Keras loads
into PyTorch and back.

Why safetensors.  A PyTorch ``.pt`` file (``torch.save``) is a zip archive of
pickles, and a pickle is a small program: unpickling may call any importable
function with any arguments (that is how ``__reduce__`` works), so opening a
stranger's ``.pt`` with ``pickle`` or ``torch.load(..., weights_only=False)`` runs
their code with your rights.  ``torch.load`` must therefore be called with
``weights_only=True`` (the default since PyTorch 2.6) for any file you did not
write: it swaps in an unpickler that builds only tensors, plain containers and an
allow-list of types.  Keras's ``.keras`` is a zip of a JSON config and the weights;
``keras.saving.load_model`` keeps ``safe_mode=True`` by default, which refuses to
rebuild the Python bytecode a ``Lambda`` layer stores; never turn it off for a
file you did not write.  A safetensors file has nothing to execute: a JSON header
gives each tensor's name, dtype, shape and byte range, and the raw numbers follow.
Reading one parses JSON and copies bytes.  Nothing in this module unpickles.

File layout (the safetensors format):

    bytes 0..8      N, the header's length: an unsigned 64-bit little-endian integer
    bytes 8..8+N    the header: UTF-8 JSON, padded with spaces
                      {"__metadata__": {"format": "seq2seq-rosetta/checkpoint",
                                        "version": "1",
                                        "config": "<Seq2SeqConfig.to_dict() as JSON>",
                                        "src_tokenizer": "<Tokenizer.to_dict() as JSON>",
                                        "tgt_tokenizer": "<Tokenizer.to_dict() as JSON>",
                                        "sha256": "<64 hex digits, see below>"},
                       "decoder.embedding": {"dtype": "F32", "shape": [V_tgt, E],
                                             "data_offsets": [begin, end]},
                       ... one entry per canonical name of the config ...}
    bytes 8+N..     the data section: every tensor's float32 values, little-endian, in C
                    order, tensor by tensor; a tensor's [begin, end) counts from 8+N

safetensors metadata maps strings to strings, so the config and the tokenizers are
JSON texts inside the JSON header.

Reading trusts nothing and reads nothing it has not sized first (``shared.files.safe``):
the path must name a regular file (a symlink to one is fine; a FIFO, a device or a
directory is refused before a byte is read); a file is taken for safetensors by its
structure, a header length N and a '{' at byte 8 with the N header bytes inside the
file, before its first bytes are compared with pickle's, zip's or HDF5's signatures
(the first byte is N's low byte, and N = 128 + 256k begins with pickle's 0x80); the
file's size must equal 8 + N + the bytes the header describes, checked before the
tensors are read, so a file with junk after its data is refused without reading the
junk; and every JSON text (the header, the config, the tokenizers) is parsed
strictly: at most ``MAX_DEPTH`` levels deep, numbers of at most ``MAX_DIGITS``
characters, no NaN, no repeated keys.

The checksum ("sha256") is the SHA-256 hex digest of, for each tensor name in
sorted order (Python's ``sorted``: by code point), the UTF-8 line

    json.dumps([name, "F32", list(shape)], separators=(",", ":")) + "\\n"
    e.g.  ["decoder.output.b","F32",[11]]

followed by that tensor's raw float32 bytes, little-endian, C order; then, for
each other metadata key in sorted order, the UTF-8 line

    json.dumps(["__metadata__", key, value], separators=(",", ":")) + "\n"

It is taken over the tensors, not over the file's data section, so that it does
not depend on how a safetensors writer arranges them, anyone can recompute it
from what any safetensors reader returns, and a renamed or reshaped tensor
changes it too.  It covers the metadata as well: a flipped byte in a token's
spelling or in the config would otherwise load silently as a different model.

Saving is atomic: the bytes go to a temporary file next to the target, are forced
to disk, and then take the target's name in one ``os.replace``.  A reader sees the
old file or the new one, never half of one; a failed save removes its temporary
file and leaves the old file as it was.

Shape legend: E embedding, H hidden, V vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import safetensors
import safetensors.numpy

from shared.core.config import Seq2SeqConfig
from shared.files.atomic import write_atomically
from shared.files.safe import FileRefusedError, loads, open_regular, read_exactly, shown
from shared.layout import canonical_shapes, check_weights
from shared.text.tokenizer import Tokenizer

# What a checkpoint calls itself.  Bump the version when the layout changes; older
# code then refuses newer files instead of misreading them.
FORMAT = "seq2seq-rosetta/checkpoint"
VERSION = 1

_METADATA_KEYS = ("format", "version", "config", "src_tokenizer", "tgt_tokenizer", "sha256")

# The safetensors library's own limit on the header; ours holds the tokenizers, so a
# word vocabulary of a million tokens still fits.
MAX_HEADER_BYTES = 100_000_000
# A stored config may ask for this many layers at most, so that a hostile header cannot
# make the loader list billions of canonical names; the tensors follow from it.
MAX_LAYERS = 64
MAX_TENSORS = len(canonical_shapes(Seq2SeqConfig(4, 4, 1, 1, MAX_LAYERS, bidirectional=True)))

# The first bytes of files that must be unpickled to be read.
_PICKLE_MAGIC = {
    b"\x80": "the pickle protocol byte 0x80, as pickle.dump writes",
    b"PK\x03\x04": "a zip archive, as torch.save writes",
}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# What safetensors says of each tensor; nothing else may be said.
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


class CheckpointError(ValueError):
    """A file that ``load_checkpoint`` refuses; the one-line message names the file and why."""


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """What a checkpoint file holds, checked against itself.

    Attributes:
        weights: {canonical name: float32 array} in canonical order (``shared.layout``);
            fresh, writable copies.
        config: the model's sizes; the weights have exactly its canonical shapes.
        src_tokenizer: the source vocabulary; ``len(src_tokenizer) == config.src_vocab_size``.
        tgt_tokenizer: the target vocabulary; ``len(tgt_tokenizer) == config.tgt_vocab_size``.
    """

    weights: dict[str, np.ndarray]
    config: Seq2SeqConfig
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer


def save_checkpoint(
    path: str | os.PathLike,
    weights: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
) -> None:
    """Writes one model to a ``.safetensors`` file, atomically.

    Everything is checked before a byte is written, so a refused save leaves any
    existing file at ``path`` untouched.

    Args:
        path: the file to write; an existing file is replaced.  Its directory must exist.
        weights: {canonical name: array}, e.g. a backend's ``export_weights(model)``;
            stored as float32.
        config: the model's sizes.
        src_tokenizer: the source vocabulary, one token per row of ``encoder.embedding``.
        tgt_tokenizer: the target vocabulary, one token per row of ``decoder.embedding``.

    Raises:
        ValueError: the weights do not fit ``config`` (the message names the entry), or a
            tokenizer's size differs from its vocabulary size in ``config``.
    """
    if not isinstance(config, Seq2SeqConfig):
        raise ValueError(f"config must be a Seq2SeqConfig; got {type(config).__name__}")
    for name, tokenizer in (("src_tokenizer", src_tokenizer), ("tgt_tokenizer", tgt_tokenizer)):
        if not isinstance(tokenizer, Tokenizer):
            raise ValueError(f"{name} must be a shared.Tokenizer; got {type(tokenizer).__name__}")
    tensors = check_weights(weights, config)  # float32 copies in canonical order
    mismatch = _vocabulary_mismatch(config, src_tokenizer, tgt_tokenizer)
    if mismatch:
        raise ValueError(mismatch)
    if config.num_layers > MAX_LAYERS:
        raise ValueError(
            f"config.num_layers is {config.num_layers}; a checkpoint holds at most {MAX_LAYERS}"
        )
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": json.dumps(config.to_dict()),
        "src_tokenizer": json.dumps(src_tokenizer.to_dict()),
        "tgt_tokenizer": json.dumps(tgt_tokenizer.to_dict()),
    }
    metadata["sha256"] = _digest(tensors, metadata)
    data = safetensors.numpy.save(tensors, metadata=metadata)
    (header_bytes,) = struct.unpack("<Q", data[:8])
    if header_bytes > MAX_HEADER_BYTES:
        raise ValueError(
            f"the checkpoint header would be {header_bytes} bytes, more than the"
            f" {MAX_HEADER_BYTES} a loader reads; the tokenizers are too large"
        )
    write_atomically(path, data)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads a file written by ``save_checkpoint``, trusting nothing in it.

    The checks, in order: the path names a regular file, not empty; its first bytes
    have the safetensors structure (else: is it a pickle, a zip such as PyTorch's
    ``.pt``, an HDF5 file, or truncated?); its header is strict JSON; the format is
    ours and the version one this code reads; at most ``MAX_TENSORS`` tensors, every
    one float32, and the file holds exactly the bytes the header describes; the
    config (at most ``MAX_LAYERS`` layers) and tokenizers parse; the checksum
    matches; every weight is finite; the tensors have the config's canonical names
    and shapes; each tokenizer has one token per embedding row.

    Args:
        path: the checkpoint file.

    Returns:
        A ``Checkpoint`` with ``weights``, ``config``, ``src_tokenizer`` and ``tgt_tokenizer``.

    Raises:
        CheckpointError: (a ValueError) any check fails; the message names the file once.
    """
    where = shown(path)
    try:
        with open_regular(path, kind="checkpoint file") as (file, size):
            header, raw = _read(where, file, size)
    except FileRefusedError as refused:
        raise _error(where, refused.reason) from None
    metadata = _metadata(where, header)
    tensors = _tensors(where, raw)
    config = _config(where, metadata)
    tokenizers = [_tokenizer(where, metadata, key) for key in ("src_tokenizer", "tgt_tokenizer")]
    if _digest(tensors, metadata) != metadata["sha256"]:
        raise _error(where, "checksum mismatch: the tensor data or metadata is corrupted")
    # Checked before the shapes: a diverged model saved by a buggy writer is not "a
    # mismatch with the config", and its message should say what is wrong with it.
    for name in sorted(tensors):
        bad = int(tensors[name].size - np.count_nonzero(np.isfinite(tensors[name])))
        if bad:
            raise _error(
                where,
                f"the weights are not finite: tensor {name!r} holds {bad} NaN/inf of"
                f" {tensors[name].size} values (did training diverge?)",
            )
    try:
        weights = check_weights(tensors, config)
    except ValueError as error:
        raise _error(where, f"the tensors do not match the stored config: {error}") from None
    mismatch = _vocabulary_mismatch(config, *tokenizers)
    if mismatch:
        raise _error(where, mismatch)
    return Checkpoint(weights, config, *tokenizers)


def _error(path: str, reason: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {reason}")


def _vocabulary_mismatch(
    config: Seq2SeqConfig, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer
) -> str | None:
    """Why the tokenizers do not fit the config's embeddings, or None if they do."""
    sides = (
        ("src_tokenizer", src_tokenizer, "encoder.embedding", "src_vocab_size"),
        ("tgt_tokenizer", tgt_tokenizer, "decoder.embedding", "tgt_vocab_size"),
    )
    for name, tokenizer, embedding, field in sides:
        size = getattr(config, field)
        if len(tokenizer) != size:
            # Token id k reads row k of the embedding, so the two sizes must agree exactly.
            return (
                f"{name} has {len(tokenizer)} tokens but {embedding} has {size} rows"
                f" (config.{field}); each token id needs exactly one embedding row"
            )
    return None


def _digest(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """The checksum of the module docstring: SHA-256 over the tensors, then the metadata."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        assert tensors[name].dtype == np.float32, name  # save and load pass float32 only
        value = np.ascontiguousarray(tensors[name], dtype="<f4")  # little-endian, C order
        line = json.dumps([name, "F32", list(value.shape)], separators=(",", ":")) + "\n"
        sha.update(line.encode("utf-8"))
        sha.update(value.tobytes())
    for key in sorted(set(metadata) - {"sha256"}):
        line = json.dumps(["__metadata__", key, metadata[key]], separators=(",", ":")) + "\n"
        sha.update(line.encode("utf-8"))
    return sha.hexdigest()


def _read(where: str, file: BinaryIO, size: int) -> tuple[dict, bytes]:
    """The parsed header and the file's bytes, read only once their sizes are known to hold."""
    if size == 0:
        raise _error(where, "is empty (0 bytes)")
    head = read_exactly(file, min(size, 9), where)
    length = struct.unpack("<Q", head[:8])[0] if size >= 8 else 0
    if not (head[8:9] == b"{" and 2 <= length <= MAX_HEADER_BYTES and 8 + length <= size):
        raise _error(where, _unrecognised(head, size, length))
    text = head[8:] + read_exactly(file, length - 1, where)
    try:
        header = loads(text, where, MAX_HEADER_BYTES)
    except FileRefusedError as refused:
        raise _error(where, f"header {refused.reason}") from None
    described = _described_bytes(where, header)
    # safetensors checks the offsets too, but only once the whole file is in memory, and
    # says only "file not fully covered".
    present = size - 8 - length
    if present < described:
        raise _error(
            where,
            f"is truncated: the header describes {described} bytes of tensor data but only"
            f" {present} follow",
        )
    if present > described:
        raise _error(where, f"has {present - described} unexpected bytes after the tensor data")
    return header, head[:8] + text + read_exactly(file, described, where)


def _unrecognised(head: bytes, size: int, length: int) -> str:
    """Why a file without the safetensors structure is refused: what it looks like instead."""
    if size < 9:
        return f"is truncated: {size} bytes, too few to hold a header"
    for magic, what in _PICKLE_MAGIC.items():
        if head.startswith(magic):
            return (
                "this looks like a pickle/PyTorch .pt file; seq2seq-rosetta never unpickles,"
                f" re-save it with save_checkpoint (it starts with {what})"
            )
    if head.startswith(_HDF5_MAGIC):
        return (
            "is an HDF5 file (a Keras .h5?), not a seq2seq-rosetta checkpoint; load it with"
            " its framework and re-save it with save_checkpoint"
        )
    if head[8:9] != b"{":
        return (
            "is not a safetensors checkpoint: its JSON header should open with '{' at byte 8"
            f" but has {head[8:9]!r} (garbage, or another file format)"
        )
    if length > MAX_HEADER_BYTES:
        return (
            f"its header claims {length} bytes; a header of more than {MAX_HEADER_BYTES}"
            " bytes is not read"
        )
    if length < 2:
        return f"its header claims {length} bytes, too few for a JSON object"
    return f"is truncated: its header is {length} bytes long but only {size - 8} bytes follow"


def _metadata(path: str, header: dict) -> dict[str, str]:
    """The header's ``__metadata__``, once it is known to be ours, of this version, complete."""
    metadata = header.get("__metadata__")
    if metadata is None:
        raise _error(
            path,
            "is a safetensors file but not a seq2seq-rosetta checkpoint (no __metadata__)",
        )
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _error(path, "__metadata__ must be a JSON object of strings")
    if metadata.get("format") != FORMAT:
        raise _error(
            path,
            f"is not a seq2seq-rosetta checkpoint: its format is {metadata.get('format')!r},"
            f" expected {FORMAT!r}",
        )
    version = metadata.get("version")
    if version != str(VERSION):
        numeric = isinstance(version, str) and version.isascii() and version.isdigit()
        if numeric and int(version) > VERSION:
            reason = (
                f"checkpoint format version {int(version)} is newer than this seq2seq-rosetta"
                f" reads ({VERSION}); upgrade"
            )
        else:
            reason = (
                f"unknown checkpoint format version {version!r}; this seq2seq-rosetta reads"
                f" {VERSION}"
            )
        raise _error(path, reason)
    missing = [key for key in _METADATA_KEYS if key not in metadata]
    unknown = sorted(set(metadata) - set(_METADATA_KEYS))
    if missing or unknown:
        raise _error(path, f"__metadata__ lacks keys {missing} and has unknown keys {unknown}")
    return metadata


def _described_bytes(where: str, header: dict) -> int:
    """The length of the data section the header describes, once its entries are sound."""
    if len(header) - 1 > MAX_TENSORS:
        raise _error(
            where, f"header describes {len(header) - 1} tensors; a checkpoint holds at most"
            f" {MAX_TENSORS}"
        )
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise _error(where, f"header entry {name!r} is not a tensor description")
        if set(entry) != _ENTRY_KEYS:
            # safetensors ignores unknown keys, and the checksum does not cover them.
            raise _error(
                where,
                f"header entry {name!r} has keys {sorted(entry)}; expected"
                f" {sorted(_ENTRY_KEYS)}",
            )
        if entry.get("dtype") != "F32":
            raise _error(
                where,
                f"tensor {name!r} has dtype {entry.get('dtype')!r}; checkpoints hold float32"
                " ('F32') only",
            )
        offsets = entry.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int):
            ends.append(offsets[1])
    return max(ends, default=0)


def _tensors(where: str, raw: bytes) -> dict[str, np.ndarray]:
    """Every tensor of the file, read by the safetensors library from the checked bytes."""
    try:
        return safetensors.numpy.load(raw)
    except safetensors.SafetensorError as error:
        raise _error(where, f"is not a valid safetensors file: {error}") from None


def _config(where: str, metadata: dict[str, str]) -> Seq2SeqConfig:
    # Parsed outside the try: a CheckpointError is a ValueError, and catching the JSON
    # refusal here would name the file twice.
    data = _json(where, metadata, "config")
    try:
        config = Seq2SeqConfig.from_dict(data)
    except ValueError as error:
        raise _error(where, f"metadata 'config' is not a valid Seq2SeqConfig: {error}") from None
    if config.num_layers > MAX_LAYERS:
        raise _error(
            where,
            f"metadata 'config' asks for {config.num_layers} layers; a checkpoint holds at"
            f" most {MAX_LAYERS}",
        )
    return config


def _tokenizer(where: str, metadata: dict[str, str], key: str) -> Tokenizer:
    data = _json(where, metadata, key)
    try:
        return Tokenizer.from_dict(data)
    except ValueError as error:
        raise _error(where, f"metadata {key!r} is not a valid tokenizer: {error}") from None


def _json(where: str, metadata: dict[str, str], key: str) -> object:
    try:
        return loads(metadata[key], where, MAX_HEADER_BYTES)
    except FileRefusedError as refused:
        raise _error(where, f"metadata {key!r} {refused.reason}") from None
