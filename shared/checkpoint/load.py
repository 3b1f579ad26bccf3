"""``load_checkpoint``: a checkpoint read back strictly, or refused in one line.

    checkpoint = load_checkpoint("model.safetensors")
    checkpoint.weights, checkpoint.config, checkpoint.src_tokenizer, checkpoint.tgt_tokenizer
    checkpoint.training       # where the run stopped and its optimizer's state, or None

Any file that fails a check raises ``CheckpointError`` (a ``ValueError``) whose
message names the file once and says why.  The loader trusts nothing in the
file, reads nothing it has not sized first (``shared.files.safe``) and never
unpickles; docs/checkpoint.md lists the checks and the reasons for each.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import safetensors
import safetensors.numpy

from shared.checkpoint.format import (
    FORMAT,
    MAX_HEADER_BYTES,
    MAX_LAYERS,
    MAX_TENSORS,
    VERSION,
    WEIGHTS_ONLY_VERSION,
    digest,
    metadata_keys,
    vocabulary_mismatch,
)
from shared.checkpoint.training_state import PREFIX, TrainingState, read_training_state
from shared.core.config import Seq2SeqConfig
from shared.files.safe import FileRefusedError, loads, open_regular, read_exactly, shown
from shared.layout import check_weights
from shared.text.tokenizer import Tokenizer

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
        training: where the run stopped and its optimizer's state, checked against the
            config (``shared.checkpoint.training_state``); None in a checkpoint of
            weights only (format version 1).
    """

    weights: dict[str, np.ndarray]
    config: Seq2SeqConfig
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    training: TrainingState | None = None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads a file written by ``save_checkpoint``, trusting nothing in it.

    The checks, in order (docs/checkpoint.md says why each is there): the path names
    a regular file, not empty; its first bytes have the safetensors structure (else:
    is it a pickle, a zip such as PyTorch's ``.pt``, an HDF5 file, or truncated?); its
    header is strict JSON and describes at most ``MAX_TENSORS`` tensors, every one
    float32; the file holds exactly the bytes the header describes; the format is
    ours and the version one this code reads; the config (at most ``MAX_LAYERS``
    layers) and tokenizers parse; the checksum matches; every weight is finite; the
    tensors have the config's canonical names and shapes; each tokenizer has one
    token per embedding row.

    Args:
        path: the checkpoint file.

    Returns:
        A ``Checkpoint`` with ``weights``, ``config``, ``src_tokenizer``, ``tgt_tokenizer``
        and ``training`` (None for weights only).

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
    if digest(tensors, metadata) != metadata["sha256"]:
        raise _error(where, "checksum mismatch: the tensor data or metadata is corrupted")
    # Checked before the shapes: a diverged model saved by a buggy writer is not "a
    # mismatch with the config", and its message should say what is wrong with it.
    # (A weight's canonical name never starts with the slots' prefix "optimizer.".)
    slots = {name: tensors.pop(name) for name in sorted(tensors) if name.startswith(PREFIX)}
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
    mismatch = vocabulary_mismatch(config, *tokenizers)
    if mismatch:
        raise _error(where, mismatch)
    return Checkpoint(weights, config, *tokenizers, _training(where, metadata, slots, config))


def _error(path: str, reason: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {reason}")


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
    if version not in (str(WEIGHTS_ONLY_VERSION), str(VERSION)):
        numeric = isinstance(version, str) and version.isascii() and version.isdigit()
        if numeric and int(version) > VERSION:
            reason = (
                f"checkpoint format version {int(version)} is newer than this seq2seq-rosetta"
                f" reads ({VERSION}); upgrade"
            )
        else:
            reason = (
                f"unknown checkpoint format version {version!r}; this seq2seq-rosetta reads"
                f" {WEIGHTS_ONLY_VERSION} and {VERSION}"
            )
        raise _error(path, reason)
    keys = metadata_keys(version)
    missing = [key for key in keys if key not in metadata]
    unknown = sorted(set(metadata) - set(keys))
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


def _training(
    where: str, metadata: dict[str, str], slots: dict[str, np.ndarray], config: Seq2SeqConfig
) -> TrainingState | None:
    """The training state of a version 2 file; a version 1 file has no slot tensors."""
    if "training" not in metadata:
        if slots:
            raise _error(where, f"tensor {min(slots)!r} is an optimizer slot, but the file has no"
                                " training state (format version 1)")
        return None
    data = _json(where, metadata, "training")
    try:
        return read_training_state(data, slots, config)
    except ValueError as error:
        raise _error(where, f"the training state does not hold: {error}") from None


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
