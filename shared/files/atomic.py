"""Writing a file whole or not at all: ``write_atomically(path, data)``.

Every output a run leaves behind (checkpoints, ported weights, later a training
history) goes through here, so none is ever seen half written:

1. the bytes go to a temporary file in the target's own folder (``os.replace``
   is atomic only within one file system), named ``.NAME.PID.XXXX.tmp``;
2. they are forced to disk (``fsync``) before any name points at them;
3. the temporary file takes the permissions ``open(path, "w")`` would give;
4. one ``os.replace`` gives it the target's name, and the folder is synced so
   that the new name survives a power cut.

A reader sees the old file or the new one, never a mix.  Any failure on the way,
a full disk, an I/O error or Ctrl-C, removes the temporary file, leaves an
existing target as it was, and raises the failure.

A run killed with ``kill -9`` (or a power cut) cannot remove its temporary
file; the next write of the same target does: ``.NAME.PID.*.tmp`` files whose
writer PID no longer runs are deleted first (``stale_temporaries``).  No loader
reads them meanwhile: their names are not the target's.

Example:

    write_atomically("model.safetensors", data)   # data: bytes; the folder must exist
    write_atomically_by("loss.png", lambda file: figure.savefig(file, format="png"))
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from typing import BinaryIO

# A temporary file without its writer's PID in its name is stale after an hour.
OLD_SECONDS = 3600


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Puts ``data`` at ``path`` whole or not at all.

    Args:
        path: the file to write; an existing file is replaced.  Its folder must exist.
        data: the file's bytes.

    Raises:
        OSError: the folder does not exist, the disk is full, ...; nothing is left behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    for stale in stale_temporaries(path):
        with contextlib.suppress(OSError):
            os.unlink(stale)
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=folder, prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp",
            delete=False,
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
    if os.name == "posix":  # the new name lives in the folder: sync it to survive a power cut
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_atomically_by(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Puts at ``path``, whole or not at all, what ``write(file)`` writes into a memory file.

    For writers that want a file object (matplotlib's ``savefig``, ``np.save``).
    """
    buffer = io.BytesIO()
    write(buffer)
    write_atomically(path, buffer.getvalue())


def stale_temporaries(path: str | os.PathLike) -> list[str]:
    """The temporary files a killed writer of ``path`` left beside it: ``.NAME.PID.XXXX.tmp``
    whose PID runs no more, or ``.NAME.XXXX.tmp`` (no PID) older than ``OLD_SECONDS``."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return []
    found = []
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):].split(".", 1)[0]
        full = os.path.join(folder, entry)
        if pid.isascii() and pid.isdigit():
            if not _running(int(pid)):
                found.append(full)
        elif _older_than(full, OLD_SECONDS):  # an earlier version's name, without its PID
            found.append(full)
    return found


def _older_than(path: str, seconds: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or no way to tell: leave its file alone
    return True


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: 0o666 less the umask.

    NamedTemporaryFile creates files readable by their owner only; an output
    should be as readable as any other file its user writes.
    """
    umask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask
