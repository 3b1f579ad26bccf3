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

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import safetensors
import safetensors.numpy

from shared.config import Seq2SeqConfig
from shared.layout import check_weights
from shared.tokenizer import Tokenizer

# What a checkpoint calls itself.  Bump the version when the layout changes; older
# code then refuses newer files instead of misreading them.
FORMAT = "seq2seq-rosetta/checkpoint"
VERSION = 1

_METADATA_KEYS = ("format", "version", "config", "src_tokenizer", "tgt_tokenizer", "sha256")

# The first bytes of files that must be unpickled to be read.
_PICKLE_MAGIC = {
    b"\x80": "the pickle protocol byte 0x80, as pickle.dump writes",
    b"PK\x03\x04": "a zip archive, as torch.save writes",
}


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
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": json.dumps(config.to_dict()),
        "src_tokenizer": json.dumps(src_tokenizer.to_dict()),
        "tgt_tokenizer": json.dumps(tgt_tokenizer.to_dict()),
    }
    metadata["sha256"] = _digest(tensors, metadata)
    _write_atomically(os.fspath(path), safetensors.numpy.save(tensors, metadata=metadata))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads a file written by ``save_checkpoint``, trusting nothing in it.

    The checks, in order: the file exists and is not empty; it is not a pickle or a
    zip (PyTorch ``.pt``); its header is complete JSON; the format is ours and the
    version one this code reads; every tensor is float32 and the data is all there;
    the checksum matches; the config and tokenizers parse; the tensors have the
    config's canonical names and shapes; each tokenizer has one token per embedding row.

    Args:
        path: the checkpoint file.

    Returns:
        A ``Checkpoint`` with ``weights``, ``config``, ``src_tokenizer`` and ``tgt_tokenizer``.

    Raises:
        CheckpointError: (a ValueError) any check fails; the message names the file.
    """
    where = os.fspath(path)
    raw = _read(where)
    header, data_start = _header(where, raw)
    metadata = _metadata(where, header)
    tensors = _tensors(where, raw, header, data_start)
    try:
        config = Seq2SeqConfig.from_dict(_json(where, metadata, "config"))
    except ValueError as error:
        raise _error(where, f"metadata 'config' is not a valid Seq2SeqConfig: {error}") from None
    tokenizers = []
    for key in ("src_tokenizer", "tgt_tokenizer"):
        try:
            tokenizers.append(Tokenizer.from_dict(_json(where, metadata, key)))
        except ValueError as error:
            raise _error(where, f"metadata {key!r} is not a valid tokenizer: {error}") from None
    if _digest(tensors, metadata) != metadata["sha256"]:
        raise _error(where, "checksum mismatch: the tensor data or metadata is corrupted")
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


def _write_atomically(path: str, data: bytes) -> None:
    """Puts ``data`` at ``path`` whole or not at all (see the module docstring)."""
    # os.replace is atomic only within one file system, hence a temporary file in
    # the target's own directory.
    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp", delete=False
        ) as file:
            temporary = file.name
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.chmod(temporary, _new_file_mode())
        os.replace(temporary, path)
    except BaseException:  # KeyboardInterrupt too: never leave a half-written temporary file
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise
    if os.name == "posix":  # the new name lives in the directory: sync it to survive a power cut
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file.

    NamedTemporaryFile creates files readable by their owner only; a checkpoint
    should be as readable as any other file its user writes.
    """
    umask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise _error(path, "no such file") from None
    except IsADirectoryError:
        raise _error(path, "is a directory, not a checkpoint file") from None


def _header(path: str, raw: bytes) -> tuple[dict, int]:
    """The parsed JSON header and where the data section starts."""
    if not raw:
        raise _error(path, "is empty (0 bytes)")
    for magic, what in _PICKLE_MAGIC.items():
        if raw.startswith(magic):
            raise _error(
                path,
                "this looks like a pickle/PyTorch .pt file; seq2seq-rosetta never unpickles,"
                f" re-save it with save_checkpoint (it starts with {what})",
            )
    if len(raw) < 9:
        raise _error(path, f"is truncated: {len(raw)} bytes, too few to hold a header")
    if raw[8:9] != b"{":
        raise _error(
            path,
            f"is not a safetensors checkpoint: its JSON header should open with '{{' at byte 8"
            f" but has {raw[8:9]!r} (garbage, or another file format)",
        )
    (size,) = struct.unpack("<Q", raw[:8])
    if 8 + size > len(raw):
        raise _error(
            path,
            f"is truncated: its header is {size} bytes long but only {len(raw) - 8} bytes follow",
        )
    try:
        header = json.loads(raw[8 : 8 + size].decode("utf-8"))
    except UnicodeDecodeError as error:
        raise _error(path, f"header is not UTF-8 text (corrupt?): {error.reason}") from None
    except json.JSONDecodeError as error:
        raise _error(path, f"header is not valid JSON (corrupt?): {error}") from None
    if not isinstance(header, dict):
        raise _error(path, f"header is a JSON {type(header).__name__}, not an object")
    return header, 8 + size


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


def _tensors(path: str, raw: bytes, header: dict, data_start: int) -> dict[str, np.ndarray]:
    """Every tensor of the file, once the header's description of them is known to hold."""
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise _error(path, f"header entry {name!r} is not a tensor description")
        if entry.get("dtype") != "F32":
            raise _error(
                path,
                f"tensor {name!r} has dtype {entry.get('dtype')!r}; checkpoints hold float32"
                " ('F32') only",
            )
        offsets = entry.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int):
            ends.append(offsets[1])
    # safetensors checks the offsets too, but says only "file not fully covered".
    described, present = max(ends, default=0), len(raw) - data_start
    if present < described:
        raise _error(
            path,
            f"is truncated: the header describes {described} bytes of tensor data but only"
            f" {present} follow",
        )
    if present > described:
        raise _error(path, f"has {present - described} unexpected bytes after the tensor data")
    try:
        return safetensors.numpy.load(raw)
    except safetensors.SafetensorError as error:
        raise _error(path, f"is not a valid safetensors file: {error}") from None


def _json(path: str, metadata: dict[str, str], key: str) -> object:
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as error:
        raise _error(path, f"metadata {key!r} is not valid JSON (corrupt?): {error}") from None
