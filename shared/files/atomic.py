"""Writing a file whole or not at all: ``write_atomically(path, data)``.

Every output a run leaves behind (checkpoints, ported weights, later a training
history) goes through here, so none is ever seen half written:

1. the bytes go to a temporary file in the target's own folder (``os.replace``
   is atomic only within one file system), named ``.NAME.XXXX.tmp``;
2. they are forced to disk (``fsync``) before any name points at them;
3. the temporary file takes the permissions ``open(path, "w")`` would give;
4. one ``os.replace`` gives it the target's name, and the folder is synced so
   that the new name survives a power cut.

A reader sees the old file or the new one, never a mix.  Any failure on the way,
a full disk, an I/O error or Ctrl-C, removes the temporary file, leaves an
existing target as it was, and raises the failure.

Example:

    write_atomically("model.safetensors", data)   # data: bytes; the folder must exist
"""

from __future__ import annotations

import contextlib
import os
import tempfile


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
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp", delete=False
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


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: 0o666 less the umask.

    NamedTemporaryFile creates files readable by their owner only; an output
    should be as readable as any other file its user writes.
    """
    umask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask
