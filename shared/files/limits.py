"""The sizes a reader accepts, and the check that a size a file declares is one it may allocate.

A file says how big its parts are before it gives them: a zip member its
uncompressed size, an HDF5 dataset its shape, an ONNX tensor its dims, a TF
checkpoint entry its shape and byte count, a torch storage its element count.
A reader that allocates what a file declares can be made to allocate gigabytes
by a file of a few kilobytes (a "bomb").  So every declared size is checked
here first, against two things:

1. **A cap** (below): far above any model this project ports or runs, far below
   a machine's memory, the same for every reader.
2. **The file's real size**: bytes a file does not hold cannot be read from it.
   Compressed data (a zip member, a chunked HDF5 dataset) may expand, but by at
   most ``MAX_EXPANSION`` times (deflate reaches about 1000 on zeros; weights
   compress by less than 2).

Example:

    nbytes = declared_bytes((30000, 30000), 4, "dataset /kernel", path)   # 3.6e9 > cap: refused
    check_within(nbytes, size, "dataset /kernel", path)   # more than the file holds: refused
"""

from __future__ import annotations

import os

from shared.core.budget import MEMORY_CAP, gib
from shared.files.safe import FileRefusedError

# One tensor, array or attribute: 1 GiB (268 million float32 numbers).
MAX_TENSOR_BYTES = MEMORY_CAP
# A whole model file read into memory, and the sum of a file's tensors: 2 GiB, which
# is also protobuf's limit on one ONNX file.
MAX_FILE_BYTES = 2 * MEMORY_CAP
# JSON a model file carries (a Keras config.json, an HDF5 model_config): 64 MiB.
MAX_JSON_BYTES = 64 << 20
# Compressed data may expand at most this many times, beyond a first MiB.
MAX_EXPANSION = 100
SMALL_BYTES = 1 << 20
# How many parts a file may have: zip members, HDF5 objects, ONNX tensors, TF entries.
MAX_PARTS = 100_000


def declared_bytes(shape, itemsize: int, what: str, path: str | os.PathLike,
                   cap: int = MAX_TENSOR_BYTES) -> int:
    """The bytes of an array of ``shape`` and ``itemsize``, refused over ``cap``.

    Args:
        shape: the declared dimensions, any iterable of Python or NumPy integers.
        itemsize: bytes per element.
        what: the part, for the message ("dataset /layers/lstm/vars/0").
        path: the file, for the message.
        cap: the most bytes accepted.

    Raises:
        FileRefusedError: a dimension that is not a non-negative integer, or a product
            over ``cap`` (computed without overflow: the first factor past it stops).
    """
    count = 1
    dims = list(shape)
    for dim in dims:
        if isinstance(dim, bool) or not hasattr(dim, "__index__") or int(dim) < 0:
            raise FileRefusedError(path, f"{what} declares the dimension {str(dim)[:40]!r}; "
                                         "dimensions are integers >= 0")
    if 0 in [int(dim) for dim in dims]:
        return 0
    for dim in dims:
        count *= int(dim)
        if count * itemsize > cap:
            shown = " x ".join(str(int(d)) for d in dims)[:120]
            raise FileRefusedError(
                path, f"{what} declares {shown} values of {itemsize} bytes, over the "
                      f"{gib(cap)} a reader allocates for one array; nothing was read")
    return count * itemsize


def check_within(declared: int, available: int, what: str, path: str | os.PathLike,
                 expansion: int = 1) -> None:
    """Refuses a part that declares more bytes than the file holds for it.

    Args:
        declared: the bytes the part says it has.
        available: the bytes the file holds for it (its stored size, or the file's size).
        expansion: how many times ``available`` compressed data may expand to
            (``MAX_EXPANSION``); 1 for data stored as it is.
    """
    if expansion == 1 and declared > available:
        raise FileRefusedError(
            path, f"{what} declares {declared} bytes but the file holds only {available} for it "
                  "(a bomb, or a truncated file); nothing was read")
    if expansion > 1 and declared > max(SMALL_BYTES, available * expansion):
        raise FileRefusedError(
            path, f"{what} declares {declared} bytes from {available} compressed ones, more "
                  f"than the {expansion}x expansion a reader accepts (a zip bomb?); nothing "
                  "was read")
