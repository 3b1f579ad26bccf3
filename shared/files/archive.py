"""Zip archives from strangers (``.keras``, ``torch.save`` files): members checked, reads bounded.

A zip's central directory declares each member's method, flags and sizes
before any byte of it is read.  ``open_zip`` checks them all at once:

- at most ``MAX_PARTS`` members, each named once;
- compression **stored** (0) or **deflate** (8) only: what Keras and PyTorch
  write (method 9, deflate64, and 99, AES, and the rest are refused by number,
  not left to ``zipfile``'s own words);
- **not encrypted** (flag bit 0);
- each member's declared size within the cap (``shared.files.limits``) and
  within what its compressed bytes can hold (the same for a stored member,
  ``MAX_EXPANSION`` times for deflate), the sum of them too.

``Archive.read(name)`` then reads a member in pieces and stops at its declared
size: a member whose deflate stream holds more than its header declares (a
bomb that lies) is refused after one piece too many, never inflated whole.

Example:

    with open_zip("model.keras", "Keras 3 .keras file") as archive:
        config = archive.read("config.json", max_bytes=MAX_JSON_BYTES)
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Iterator

from shared.files.limits import (
    MAX_EXPANSION,
    MAX_FILE_BYTES,
    MAX_PARTS,
    check_within,
    declared_bytes,
)
from shared.files.safe import FileRefusedError, open_regular, shown

STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
# The methods a member may use, and the names of others people meet, for messages.
METHODS = {STORED: "stored", DEFLATED: "deflate"}
OTHER_METHODS = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 95: "xz",
                 99: "AES encryption"}
PIECE = 1 << 20


class Archive:
    """An open zip whose every member has passed ``open_zip``'s checks.

    Attributes:
        path: the archive, as messages name it.
        names: the members' names, in the archive's order.
        size: the archive's size in bytes.
    """

    def __init__(self, path: str, zip_file: zipfile.ZipFile, size: int) -> None:
        self.path, self._zip, self.size = path, zip_file, size
        self.names = [info.filename for info in zip_file.infolist()]

    def read(self, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        """The member ``name``, read in pieces and never past its declared size.

        Raises:
            FileRefusedError: no such member, larger than ``max_bytes``, or its data is
                damaged (a bad deflate stream, a CRC mismatch, more or fewer bytes than
                declared).
        """
        if name not in self.names:
            raise FileRefusedError(self.path, f"holds no {name!r}")
        info = self._zip.getinfo(name)
        if info.file_size > max_bytes:
            raise FileRefusedError(
                self.path, f"member {name!r} is {info.file_size} bytes; at most {max_bytes} "
                           "are read")
        pieces, total = [], 0
        try:
            with self._zip.open(info) as member:
                while True:
                    piece = member.read(PIECE)
                    if not piece:
                        break
                    total += len(piece)
                    if total > info.file_size:
                        raise FileRefusedError(
                            self.path, f"member {name!r} holds more than the {info.file_size} "
                                       "bytes its header declares (a zip bomb?); it was not "
                                       "read")
                    pieces.append(piece)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                ValueError) as error:
            if isinstance(error, FileRefusedError):
                raise
            raise FileRefusedError(
                self.path, f"member {name!r} is damaged ({_detail(error)})") from None
        if total != info.file_size:
            raise FileRefusedError(self.path, f"member {name!r} holds {total} bytes but its "
                                              f"header declares {info.file_size} (truncated?)")
        return b"".join(pieces)


@contextlib.contextmanager
def open_zip(path: str | os.PathLike, kind: str, max_total: int = MAX_FILE_BYTES,
             methods: tuple[int, ...] = (STORED, DEFLATED)) -> Iterator[Archive]:
    """Opens a zip archive once every member's declared method, flags and sizes pass.

    Args:
        path: the archive; a regular file (``shared.files.safe.open_regular``).
        kind: what it should be, for messages ("Keras 3 .keras file").
        max_total: the most bytes all members together may declare.
        methods: the compression methods accepted (stored and deflate by default).

    Raises:
        FileRefusedError: not a zip, a damaged directory, or a member that breaks a rule.
    """
    where = shown(path)
    with open_regular(path, kind) as (file, size):
        try:
            zip_file = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                UnicodeDecodeError) as error:
            raise FileRefusedError(
                path, f"is a damaged or truncated zip archive ({_detail(error)})") from None
        with zip_file:
            check_members(where, zip_file.infolist(), size, max_total, methods)
            yield Archive(where, zip_file, size)


def check_members(path: str, infos: list[zipfile.ZipInfo], size: int,
                  max_total: int = MAX_FILE_BYTES,
                  methods: tuple[int, ...] = (STORED, DEFLATED)) -> None:
    """The rules of the module docstring on a zip's directory entries; refused at the first."""
    if len(infos) > MAX_PARTS:
        raise FileRefusedError(path, f"holds {len(infos)} zip members; at most {MAX_PARTS} are "
                                     "read")
    names, total = set(), 0
    for info in infos:
        name = info.filename
        if name in names:
            raise FileRefusedError(path, f"holds the member {name!r} twice; which one counts "
                                         "is not defined")
        names.add(name)
        if info.flag_bits & 0x1:
            raise FileRefusedError(path, f"member {name!r} is encrypted; encrypted archives "
                                         "are not read")
        if info.compress_type not in methods:
            method = METHODS.get(info.compress_type) or OTHER_METHODS.get(
                info.compress_type, "unknown")
            accepted = " or ".join(METHODS[m] for m in methods)
            raise FileRefusedError(
                path, f"member {name!r} uses compression method {info.compress_type} "
                      f"({method}); only {accepted} members are read")
        what = f"zip member {name!r}"
        declared_bytes((info.file_size,), 1, what, path, cap=max_total)
        check_within(info.compress_size, size, what, path)
        expansion = 1 if info.compress_type == STORED else MAX_EXPANSION
        check_within(info.file_size, info.compress_size, what, path, expansion)
        total += info.file_size
        if total > max_total:
            raise FileRefusedError(path, f"its zip members declare {total} bytes or more in "
                                         f"all; at most {max_total} are read")


def _detail(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
