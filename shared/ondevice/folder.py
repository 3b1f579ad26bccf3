"""An on-device export folder: two programs and ``metadata.json``, written, and read back checked.

    out/litert/                      out/executorch/
        encoder.tflite                   encoder.pte
        decoder.tflite                   decoder.pte
        metadata.json                    metadata.json

``metadata.json`` says what the programs are, so that a loader can hold them to it:

    format              "seq2seq-rosetta/litert" or "seq2seq-rosetta/executorch"
    format_version      1
    version             the seq2seq-rosetta version that wrote it
    config              the Seq2SeqConfig
    checkpoint_sha256   the checksum of the checkpoint the weights came from ("" when
                        exported from a model in memory)
    batch_size          B_f, the programs' fixed batch
    max_source_length   S_f, the source length the encoder reads at once, and the
                        memory length the decoder attends over
    files               per part: the file's name, size and SHA-256 of its exact bytes
    exporter            the frameworks that wrote it and their versions
    options             how it was written (e.g. ExecuTorch's delegate)
    operators           per part, the operators the program calls, where the
                        exporter can list them (ExecuTorch; LiteRT lists them from
                        the file itself, ``litert_impl``)

``read_folder`` trusts nothing: regular files only, sizes checked before reading,
strict JSON (``shared.files.safe``), our format and a version it reads, a config
that parses, sizes in range, and every program's bytes matching its checksum.  A
checksum is not a signature: it catches corruption, a file from another export,
and editing, not a forger who rewrites ``metadata.json`` too; the engines check
each program's structure as well (names, shapes, dtypes, operators).

Shapes: B_f fixed batch, S_f fixed source length.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.core.config import Seq2SeqConfig
from shared.core.version import __version__
from shared.files.atomic import write_atomically
from shared.files.safe import FileRefusedError, loads, read_regular
from shared.ondevice.contract import PARTS

FORMATS = {"litert": ".tflite", "executorch": ".pte"}  # the runtime -> its programs' suffix
FORMAT_VERSION = 1
METADATA = "metadata.json"
# Limits a loader keeps to before it reads: metadata is a few kilobytes; a program
# holds the weights (float32) and its instructions, which grow with S_f when unrolled.
MAX_METADATA_BYTES = 1_000_000
MAX_PROGRAM_BYTES = 2**31 - 1
# The largest fixed shapes an exporter writes and a loader accepts.
MAX_BATCH_SIZE = 4096
MAX_SOURCE_LENGTH = 1024
_KEYS = ("format", "format_version", "version", "config", "checkpoint_sha256", "batch_size",
         "max_source_length", "files", "exporter", "options", "operators")


class OnDeviceModelError(ValueError):
    """A folder or program that ``read_folder`` (or an engine) refuses; the message names it."""


@dataclass(frozen=True)
class Export:
    """A checked export folder: what its metadata says and each program's verified bytes."""

    runtime: str
    config: Seq2SeqConfig
    batch_size: int
    max_source_length: int
    checkpoint_sha256: str
    programs: dict[str, bytes]  # part -> the exact bytes that were checked
    metadata: dict


def file_name(runtime: str, part: str) -> str:
    """"encoder.tflite", "decoder.pte", ...: fixed by the format, never read from a file."""
    return f"{part}{FORMATS[runtime]}"


def check_shape(batch_size: object, max_source_length: object) -> tuple[int, int]:
    """The fixed shape: ints in [1, MAX_BATCH_SIZE] and [1, MAX_SOURCE_LENGTH], or a ValueError."""
    checked = []
    for name, value, high in (("batch_size", batch_size, MAX_BATCH_SIZE),
                              ("max_source_length", max_source_length, MAX_SOURCE_LENGTH)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ValueError(f"{name} must be an integer in [1, {high}]; got {value!r}")
        checked.append(value)
    return checked[0], checked[1]


def write_folder(
    out: str | os.PathLike, runtime: str, programs: Mapping[str, bytes], config: Seq2SeqConfig,
    batch_size: int, max_source_length: int, *, checkpoint_sha256: str = "",
    exporter: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None,
    operators: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Path]:
    """Write both programs and ``metadata.json`` into ``out`` (created if missing).

    Each file is written whole or not at all (``shared.files.atomic``), the metadata
    last, so a folder never describes programs that are not there.

    Returns:
        {"encoder": path, "decoder": path, "metadata": path}.
    """
    batch_size, max_source_length = check_shape(batch_size, max_source_length)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths, files = {}, {}
    for part in PARTS:
        data = programs[part]
        paths[part] = folder / file_name(runtime, part)
        write_atomically(paths[part], data)
        files[part] = {"name": paths[part].name, "bytes": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()}
    metadata = {
        "format": f"seq2seq-rosetta/{runtime}", "format_version": FORMAT_VERSION,
        "version": __version__, "config": config.to_dict(),
        "checkpoint_sha256": checkpoint_sha256, "batch_size": batch_size,
        "max_source_length": max_source_length, "files": files,
        "exporter": dict(exporter or {}), "options": dict(options or {}),
        "operators": {part: dict(ops) for part, ops in (operators or {}).items()},
    }
    paths["metadata"] = folder / METADATA
    write_atomically(paths["metadata"], (json.dumps(metadata, indent=2) + "\n").encode())
    return paths


def read_folder(folder: str | os.PathLike, runtime: str) -> Export:
    """The programs of a folder written by ``write_folder`` for ``runtime``, once checked.

    Raises:
        OnDeviceModelError: (a ValueError) a check failed; the message names the file
            and says why.
    """
    folder = Path(folder)
    where = folder / METADATA
    if not folder.is_dir():
        raise OnDeviceModelError(
            f"{runtime} folder {folder}: no such folder (seq2seq-rosetta export --format "
            f"{runtime} writes {file_name(runtime, 'encoder')}, {file_name(runtime, 'decoder')} "
            f"and {METADATA} into one)")
    metadata = _metadata(where, runtime)
    try:
        config = Seq2SeqConfig.from_dict(metadata["config"])
        batch_size, max_source_length = check_shape(metadata["batch_size"],
                                                    metadata["max_source_length"])
    except ValueError as error:
        raise _error(where, f"metadata does not describe a model we export: {error}") from None
    programs = {}
    for part in PARTS:
        path = folder / file_name(runtime, part)
        try:
            data = read_regular(path, f"{runtime} program", MAX_PROGRAM_BYTES)
        except FileRefusedError as refused:
            raise _error(path, refused.reason) from None
        expected = metadata["files"].get(part) if isinstance(metadata["files"], dict) else None
        if not isinstance(expected, dict) or expected.get("sha256") != hashlib.sha256(
                data).hexdigest():
            raise _error(path, f"checksum mismatch: the file is not the {part} program that "
                               f"{METADATA} describes (changed after export, or from another "
                               "export); export again")
        programs[part] = data
    return Export(runtime, config, batch_size, max_source_length,
                  str(metadata["checkpoint_sha256"]), programs, metadata)


def runtime_of(folder: str | os.PathLike) -> str:
    """Which runtime's programs a folder holds ("litert" or "executorch"), from its metadata.

    Raises:
        OnDeviceModelError: no metadata, or not one of ours.
    """
    where = Path(folder) / METADATA
    try:
        metadata = loads(read_regular(where, "metadata file", MAX_METADATA_BYTES), where,
                         MAX_METADATA_BYTES)
    except FileRefusedError as refused:
        raise _error(where, f"{refused.reason} (an export folder of `seq2seq-rosetta export "
                            "--format litert|executorch` holds one)") from None
    found = metadata.get("format") if isinstance(metadata, dict) else None
    for runtime in FORMATS:
        if found == f"seq2seq-rosetta/{runtime}":
            return runtime
    raise _error(where, f"is not a seq2seq-rosetta on-device export (format {found!r})")


def _metadata(where: Path, runtime: str) -> dict:
    try:
        metadata = loads(read_regular(where, "metadata file", MAX_METADATA_BYTES), where,
                         MAX_METADATA_BYTES)
    except FileRefusedError as refused:
        raise _error(where, refused.reason) from None
    if not isinstance(metadata, dict) or metadata.get("format") != f"seq2seq-rosetta/{runtime}":
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise _error(where, f"is not a seq2seq-rosetta {runtime} export (format {found!r})")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and \
            version > FORMAT_VERSION
        raise _error(where, f"format version {version!r} is newer than this seq2seq-rosetta "
                            f"reads ({FORMAT_VERSION}); upgrade" if newer else
                            f"unknown format version {version!r}; this seq2seq-rosetta reads "
                            f"{FORMAT_VERSION}")
    missing = [key for key in _KEYS if key not in metadata]
    if missing:
        raise _error(where, f"metadata lacks {', '.join(missing)}")
    return metadata


def _error(path: Path, reason: str) -> OnDeviceModelError:
    return OnDeviceModelError(f"{path}: {reason}")
