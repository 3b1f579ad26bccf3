"""What kind of model file SRC is, read from its first bytes, not from its name.

    starts with / holds                               kind          read by
    a zip holding config.json + model.weights.h5      "keras"       read_keras (Keras 3 .keras)
    the HDF5 signature 89 'HDF' 0d 0a 1a 0a           "keras-h5"    read_keras_h5 (legacy .h5,
                                                                    .weights.h5)
    a zip holding */data.pkl, or a pickle (0x80)      "torch"       read_torch (torch.save)
    8-byte length, then '{' (a JSON header)           "safetensors" read_torch
    a prefix P with P.index, or a folder holding      "tf1"         read_tf1 (TF1, and TF2
      a 'checkpoint' file or *.index                                object-based: read_tf2)
    a protobuf opening with ir_version (0x08), or     "onnx"        read_onnx
      any file named *.onnx

Before any byte is read, SRC must be a regular file (or a TF1 folder): a FIFO
would block the read forever and a device could be endless, so both are refused
from ``os.stat`` alone, and the first bytes are read through
``shared.files.safe.open_regular`` (opened without blocking, checked on the open
file).  A zip's names come from ``shared.files.archive.open_zip``, which checks
every member's method, flags and sizes first.  A TensorFlow SavedModel (a folder
holding ``saved_model.pb``) is not read: loading it runs the functions it holds;
the refusal points at its ``variables/variables``, a TF2 checkpoint port reads.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

from shared.files.archive import open_zip
from shared.files.safe import FileRefusedError, brief, open_regular, read_exactly
from shared.port.layers import PortError

KINDS = {
    "keras": "Keras 3 .keras file",
    "keras-h5": "legacy Keras .h5 model",
    "torch": "PyTorch state_dict (torch.save)",
    "safetensors": "safetensors state_dict",
    "tf1": "TF checkpoint",
    "onnx": "ONNX model",
}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
TF1_DATA = ".data-"  # model.ckpt.data-00000-of-00001
SAVED_MODEL = ("saved_model.pb", "saved_model.pbtxt")


def _kind_of_mode(mode: int) -> str | None:
    """What a non-regular file is, in words, or None for a regular file."""
    for test, what in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return None


def tf1_prefix(path: str) -> str | None:
    """The TF1 checkpoint prefix that ``path`` names (a prefix, its .index or a data shard)."""
    # exists, not isfile: a FIFO or a device as the .index is refused by the reader, by name.
    if os.path.exists(path + ".index"):
        return path
    for marker in (".index", TF1_DATA):
        head, found, _ = path.rpartition(marker)
        if found and os.path.exists(head + ".index"):
            return head
    return None


def detect(path: str) -> str:
    """The kind of model file at ``path`` (a key of ``KINDS``), or PortError saying why none.

    Args:
        path: SRC as given: a file, a TF1 checkpoint prefix or a folder holding one.
    """
    saved_model = Path(path) if os.path.isdir(path) else Path(path).parent
    if any((saved_model / name).is_file() for name in SAVED_MODEL) and (
        os.path.isdir(path) or os.path.basename(path) in SAVED_MODEL
    ):
        raise PortError(
            f"{saved_model} is a TensorFlow SavedModel, which port does not load (loading it "
            "runs the functions it holds); its weights are a TF2 checkpoint port reads: "
            f"port {saved_model / 'variables' / 'variables'}"
        )
    if os.path.isdir(path):
        folder = Path(path)
        if (folder / "checkpoint").is_file() or any(folder.glob("*.index")):
            return "tf1"
        raise PortError(
            f"{path} is a directory with no TF1 checkpoint in it (no 'checkpoint' file, no "
            "*.index); give a model file, a TF1 checkpoint prefix or its folder"
        )
    if not os.path.exists(path):
        if tf1_prefix(path) is not None:
            return "tf1"
        raise PortError(f"{path}: no such file (nor a TF1 checkpoint prefix: no {path}.index)")
    mode = os.stat(path).st_mode
    if _kind_of_mode(mode) is not None:
        raise PortError(f"{path} is {_kind_of_mode(mode)}, not a regular file; give a model file")
    named_tf1 = path.endswith(".index") or TF1_DATA in os.path.basename(path)
    if named_tf1 and tf1_prefix(path) is not None:
        return "tf1"
    try:
        with open_regular(path, "model file") as (file, size):
            head = read_exactly(file, min(size, 16), path)
    except FileRefusedError as refused:
        raise PortError(str(refused)) from None
    if not head:
        raise PortError(f"{path} is empty (0 bytes)")
    if head.startswith(ZIP_SIGNATURE):
        return _zip_kind(path)
    if head.startswith(HDF5_SIGNATURE):
        return "keras-h5"
    if head.startswith(b"\x80"):
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 1:
        return "safetensors"
    if head.startswith(b"\x08") or path.endswith(".onnx"):
        return "onnx"
    raise PortError(
        f"{path} is not a model file port reads (it starts with {head[:8]!r}): expected a "
        ".keras or .h5 Keras model, a PyTorch state_dict (.pt/.pth/.bin/.safetensors), a TF1 "
        "checkpoint or an ONNX model"
    )


def _zip_kind(path: str) -> str:
    """"keras" or "torch" for a zip archive, by the names inside it."""
    try:
        with open_zip(path, "model file") as archive:
            names = archive.names
    except FileRefusedError as refused:
        raise PortError(str(refused)) from None
    if "config.json" in names and "model.weights.h5" in names:
        return "keras"
    if any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        return "torch"
    raise PortError(
        f"{path} is a zip archive but neither a .keras file (config.json + model.weights.h5) "
        f"nor a torch.save file (*/data.pkl); it holds {brief(names[:5]) if names else 'nothing'}"
    )
