"""Opening files from strangers: regular files only, sizes checked first, strict JSON.

Every loader in ``shared`` (checkpoints, tokenizers, pair files) reads through
this module, so each gets the same three rules:

1. **Regular files only.**  A path may be a symlink (to a regular file), but what
   it names must be a regular file.  A FIFO would block the reader forever, a
   device such as ``/dev/zero`` never ends, a socket cannot be read at all.  The
   file is opened with ``O_NONBLOCK`` (so opening a FIFO returns at once instead
   of waiting for a writer; reads of a regular file ignore the flag), then
   ``fstat`` on the open descriptor says what it is: the check and the read see
   the same file, with no race between them.
2. **Size first.**  The size ``fstat`` reports is compared with what the caller
   will accept before any byte is read, and reads take exactly the bytes asked
   for, never "the rest of the file".
3. **Strict JSON.**  ``loads`` refuses nesting deeper than ``MAX_DEPTH`` (Python's
   parser recurses once per level and would raise ``RecursionError``), numbers
   longer than ``MAX_DIGITS`` characters (``int()`` refuses more than 4300 digits
   with a bare ``ValueError``, and big ones are slow), NaN and Infinity (not
   JSON), numbers that overflow a float, and a key repeated in one object (JSON
   parsers disagree on which copy wins).

Every refusal is a ``FileRefusedError`` (a ``ValueError``) whose one-line message
names the file; its ``reason`` is the same message without the name, for
loaders that name the file their own way ("checkpoint model.safetensors: ...").

Example:

    with open_regular(path, kind="checkpoint file") as (file, size):
        head = read_exactly(file, 8, path)   # size is known before the first read
    # open_regular("/dev/zero", "checkpoint file") raises FileRefusedError:
    #   /dev/zero: is a character device, not a checkpoint file; only regular files are read
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import reprlib
import stat
from collections.abc import Iterator
from typing import BinaryIO

MAX_DEPTH = 64     # our files nest 3 levels deep (header -> tensor -> shape)
MAX_DIGITS = 300   # our largest numbers are byte offsets: 20 digits at most


class FileRefusedError(ValueError):
    """A file a loader will not read; ``str()`` is one line that names the file.

    Attributes:
        path: the file, as ``shown(path)`` spells it.
        reason: the message without the file's name ("is a FIFO (named pipe), ...").
    """

    def __init__(self, path: str | bytes | os.PathLike, reason: str) -> None:
        self.path = shown(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def brief(value: object, limit: int = 80, quote: bool = True) -> str:
    """``value`` as a one-line message shows it: its repr (or its str, with ``quote=False``),
    cut to about ``limit`` characters, computed without ever building a longer text.

    A file can put a 300 MB string where a name belongs; a message that repeats it
    whole is not one line any more.
    """
    shorter = reprlib.Repr()
    shorter.maxstring = shorter.maxother = limit
    shorter.maxlist = shorter.maxtuple = shorter.maxdict = shorter.maxset = 8
    shorter.maxlevel = 3
    if not quote and isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return text if text.isprintable() else repr(text)[1:-1]
    text = shorter.repr(value)
    return text if len(text) <= limit + 8 else text[:limit] + "..."


def shown(path: str | bytes | os.PathLike) -> str:
    """``path`` as a message prints it: as typed, or quoted if it holds control characters.

    A NUL or a newline in a name would otherwise break the one-line message.
    """
    text = os.fsdecode(path)
    return text if text.isprintable() else repr(text)


@contextlib.contextmanager
def open_regular(
    path: str | bytes | os.PathLike, kind: str = "regular file"
) -> Iterator[tuple[BinaryIO, int]]:
    """Opens ``path`` for reading if (after following symlinks) it is a regular file.

    Args:
        path: the file.
        kind: what the caller expects, for messages ("is a directory, not a {kind}").

    Yields:
        (file, size): an unbuffered binary file at offset 0, and its size in bytes
        as ``fstat`` gave it when it was opened.

    Raises:
        FileRefusedError: it does not exist, cannot be opened, or is not a regular file
            (a directory, FIFO, socket, device, ...); the message says which.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except ValueError:  # os.open's own complaint about a NUL byte in the name
        reason = "the path holds a NUL byte; no file can have that name"
        raise FileRefusedError(path, reason) from None
    except OSError as error:
        raise FileRefusedError(path, _open_failure(path, error, kind)) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise FileRefusedError(path, _not_regular(path, status.st_mode, kind))
        file = os.fdopen(descriptor, "rb", buffering=0)
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        yield file, status.st_size


def read_exactly(file: BinaryIO, count: int, path: str | bytes | os.PathLike) -> bytes:
    """The next ``count`` bytes of ``file``; never more, and fewer only as a refusal.

    Callers check the size first, so a short read means the file shrank meanwhile.
    """
    pieces, missing = [], count
    while missing:
        piece = file.read(missing)
        if not piece:
            raise FileRefusedError(
                path, f"ended after {count - missing} of {count} bytes (changed while read?)"
            )
        pieces.append(piece)
        missing -= len(piece)
    return b"".join(pieces)


def read_regular(path: str | bytes | os.PathLike, kind: str, max_bytes: int) -> bytes:
    """The whole of a regular file of at most ``max_bytes`` bytes, refused before reading if larger.

    Raises:
        FileRefusedError: as ``open_regular``, or the file is larger than ``max_bytes``.
    """
    with open_regular(path, kind) as (file, size):
        if size > max_bytes:
            raise FileRefusedError(
                path, f"is {size} bytes; {_a(kind)} of more than {max_bytes} bytes is not read"
            )
        return read_exactly(file, size, path)


def loads(text: str | bytes, path: str | bytes | os.PathLike, max_size: int) -> object:
    """Parses JSON under the strict rules of the module docstring.

    Args:
        text: UTF-8 bytes or a str.
        path: the file the text came from, named in refusals.
        max_size: the most bytes (or, for a str, characters) to parse.

    Returns:
        What ``json.loads`` returns: dicts, lists, str, int, finite float, bool, None.

    Raises:
        FileRefusedError: the text is too long, not UTF-8, not JSON, or breaks a rule;
            ``reason`` reads after a subject: "is not valid JSON ...", "nests ...".
    """
    unit = "bytes" if isinstance(text, bytes) else "characters"
    if len(text) > max_size:
        raise FileRefusedError(path, f"is {len(text)} {unit} long; at most {max_size} are parsed")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileRefusedError(path, f"is not UTF-8 text ({error.reason})") from None
    try:
        _check_depth(text)
        return json.loads(
            text,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except _RuleBrokenError as broken:
        raise FileRefusedError(path, str(broken)) from None
    except json.JSONDecodeError as error:
        reason = f"is not valid JSON (corrupt or truncated?): {error}"
        raise FileRefusedError(path, reason) from None


class _RuleBrokenError(Exception):
    """A strict-JSON rule broken; a separate class so json's own errors are not mistaken for it."""


# A JSON string, escapes included; then a run of opening brackets, or of closing ones.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[{]+|[\]}]+")


def _check_depth(text: str) -> None:
    """Refuses nesting deeper than MAX_DEPTH, counted before the recursive parser sees it.

    Brackets inside strings do not count, so the strings are taken out first, unless
    the text holds too few brackets to be deep anywhere (a tokenizer: one list).
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub("", text)):
        run = match.group()
        if run[0] in "[{":
            depth += len(run)
            if depth > MAX_DEPTH:
                raise _RuleBrokenError(f"nests JSON deeper than {MAX_DEPTH} levels")
        else:
            depth -= len(run)


def _check_length(digits: str) -> None:
    if len(digits) > MAX_DIGITS:
        raise _RuleBrokenError(
            f"holds a number written with {len(digits)} characters; at most {MAX_DIGITS} are read"
        )


def _integer(digits: str) -> int:
    _check_length(digits)
    return int(digits)


def _float(digits: str) -> float:
    _check_length(digits)
    value = float(digits)
    if not math.isfinite(value):
        raise _RuleBrokenError(f"holds the number {digits}, too large for a float")
    return value


def _constant(name: str) -> float:
    raise _RuleBrokenError(f"holds {name}, which is not JSON")


def _object(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _RuleBrokenError(f"repeats the key {repeated!r} in one JSON object")
    return result


# What fstat's mode says a non-regular file is, for messages.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _what(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _not_regular(path: str | bytes | os.PathLike, mode: int, kind: str) -> str:
    what = _what(mode)
    if os.path.islink(path):
        what = f"a symlink to {what} ({shown(os.path.realpath(path))})"
    return f"is {what}, not {_a(kind)}; only regular files are read"


def _a(kind: str) -> str:
    """"a checkpoint file", "an ONNX model": the article a kind takes."""
    return f"{'an' if kind[:1].lower() in 'aeio' else 'a'} {kind}"


def _open_failure(path: str | bytes | os.PathLike, error: OSError, kind: str) -> str:
    """The reason an ``os.open`` failed, in words rather than errno names."""
    if error.errno == errno.ENOENT:
        return "no such file"
    if error.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop?)"
    if error.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    if error.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a directory"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket: opening it is refused
        with contextlib.suppress(OSError):
            return _not_regular(path, os.stat(path).st_mode, kind)
    return f"cannot be opened ({error.strerror or error})"
