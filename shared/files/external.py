"""Files a file names (ONNX external data, a TF checkpoint state file): only inside its folder.

A model file may keep its tensors in other files and name them: an ONNX
tensor's ``location``, a TF ``checkpoint`` file's ``model_checkpoint_path``.
A name is a path a stranger wrote, so it is resolved here, against the folder
of the file that names it (never the current directory), and refused unless
the file it reaches is inside that folder: an absolute path, ``../``, a
symlink that leads out, the folder itself or a NUL byte is refused before
anything is opened.  The file is then read as any other (``shared.files.safe``:
a regular file, opened without blocking, its size known before the read), and
only the byte range asked for, checked against that size.

Example:

    target = inside(folder, "weights.bin", "model.onnx", "tensor 'W'")
    data = read_range(target, offset=0, length=4096, what="tensor 'W'")
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.files.limits import MAX_TENSOR_BYTES, declared_bytes
from shared.files.safe import FileRefusedError, open_regular, read_exactly, shown


def inside(folder: str | os.PathLike, location: str, path: str | os.PathLike,
           what: str, absolute: bool = False) -> Path:
    """The file ``location`` names, resolved against ``folder``, once it is inside it.

    Args:
        folder: the folder of the file that names ``location``.
        location: the name as the file holds it.
        path: the file that names it, for messages.
        what: what keeps its data there, for messages ("tensor 'W'").
        absolute: accept an absolute name that leads into the folder (TensorFlow writes
            its state file so); ONNX names are relative, and an absolute one is refused.

    Raises:
        FileRefusedError: an empty, absolute or escaping name, one with a NUL byte, or one
            that a symlink leads out of the folder.
    """
    base = Path(folder).resolve()
    if not isinstance(location, str) or not location or "\x00" in location:
        raise FileRefusedError(path, f"{what} keeps its data at {str(location)[:100]!r}, which "
                                     "is no file name")
    target = (base / location).resolve()
    escapes = not target.is_relative_to(base) or target == base
    if (os.path.isabs(location) and not absolute) or escapes:
        raise FileRefusedError(
            path, f"{what} keeps its data at {location[:200]!r}, outside its folder {base}; "
                  "only files in the model's own folder are read")
    return target


def read_range(target: str | os.PathLike, offset: int, length: int | None, what: str,
               cap: int = MAX_TENSOR_BYTES) -> bytes:
    """``length`` bytes of ``target`` from ``offset`` (None: to the end), sizes checked first.

    Raises:
        FileRefusedError: ``target`` is not a regular file, the range is negative, over
            ``cap`` or past the file's end.
    """
    with open_regular(target, "data file") as (file, size):
        if length is None:
            length = size - offset
        if offset < 0 or length < 0:
            raise FileRefusedError(target, f"{what} asks for bytes {offset} to "
                                           f"{offset + length}; ranges start at 0")
        declared_bytes((length,), 1, what, shown(target), cap=cap)
        if offset + length > size:
            raise FileRefusedError(
                target, f"{what} asks for bytes {offset} to {offset + length} but the file "
                        f"holds {size} (truncated, or the wrong file)")
        file.seek(offset)
        return read_exactly(file, length, target)
