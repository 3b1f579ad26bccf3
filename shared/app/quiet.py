"""TensorFlow's start-up notices, kept off a command's stderr.

Importing TensorFlow can print, before anything has run,

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796238017.691282    6262 port.cc:153] oneDNN custom operations are on. ...

twice over (two of its libraries log it).  The lines come from C++ before absl's
logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not stop them, even at 3.
The oneDNN notice appears wherever oneDNN is on: TensorFlow's default on CPUs
with AVX-512, or ``TF_ENABLE_ONEDNN_OPTS=1``.  We leave that setting to
TensorFlow and the user (oneDNN makes Keras steps 20-30% shorter,
docs/performance.md) and drop only its notice.

The lines go straight to file descriptor 2, past ``sys.stderr``, so the only way
to hold them back is to catch descriptor 2 itself while TensorFlow loads.  Inside
``quiet_tensorflow_import()``, whoever first imports TensorFlow (a backend, Keras,
the port command's readers) does so with descriptor 2 pointed at a temporary
file; then every line passes on except absl log lines below
``TF_CPP_MIN_LOG_LEVEL`` and absl's preamble about them.  With the level at 0
(show everything) nothing is caught.

This module imports no framework.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator

# What the command line shows of TensorFlow's C++ log, unless the user chose:
# 2 hides INFO and WARNING lines, keeps ERROR and FATAL.
DEFAULT_LOG_LEVEL = "2"

_PREAMBLE = (b"WARNING: All log messages before absl::InitializeLog() is called are written "
             b"to STDERR")
# An absl log line: severity letter, MMDD, time (00:00:<seconds> before absl starts),
# thread id, file:line], message.
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
_SEVERITIES = b"IWEF"  # TF_CPP_MIN_LOG_LEVEL 1 hides I, 2 also W, 3 also E


def log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as a number (0 when unset or not a number, as TensorFlow reads it)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def is_hidden_notice(line: bytes, level: int) -> bool:
    """Whether a line on descriptor 2 is a log line that ``level`` would hide, had absl started."""
    if level < 1:
        return False
    if line.rstrip(b"\r\n") == _PREAMBLE:
        return True
    match = _ABSL_LINE.match(line)
    return match is not None and _SEVERITIES.index(match.group(1)) < level


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[bytes], bool]) -> Iterator[None]:
    """Descriptor 2 goes to a temporary file for the block; then its lines that ``drop`` rejects
    are discarded and the rest written to the real descriptor 2, in order.

    A file, not a pipe: a pipe nobody reads would block the writer once full.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not drop(line)]
            if kept:
                os.write(2, b"".join(kept))


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with descriptor 2 filtered."""

    def __init__(self, loader: importlib.abc.Loader, level: int):
        self._loader, self._level = loader, level

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with filtered_stderr(lambda line: is_hidden_notice(line, self._level)):
            self._loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and hands back its spec with a quiet loader."""

    def __init__(self, level: int):
        self._level = level

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and so that the search below finds the real one
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self._level)
        return spec


@contextlib.contextmanager
def quiet_tensorflow_import() -> Iterator[None]:
    """Within the block, TensorFlow is imported with its start-up notices held back.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` to ``DEFAULT_LOG_LEVEL`` unless it is set.  Nothing
    changes when TensorFlow is already imported or the level is 0.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    level = log_level()
    if "tensorflow" in sys.modules or level < 1:
        yield
        return
    finder = _QuietFinder(level)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder in sys.meta_path:  # TensorFlow was not imported after all
            sys.meta_path.remove(finder)
