"""The ``seq2seq-rosetta`` command line: train, evaluate, answer, compare, port, export, demo, ...

    seq2seq-rosetta train --backend torch --task dates --epochs 5 --out runs/dates
    seq2seq-rosetta evaluate runs/dates/model.safetensors --task dates --backend onnx
    seq2seq-rosetta answer runs/dates/model.safetensors --backend keras "Nov 26, 2026"
    seq2seq-rosetta compare runs/dates/model.safetensors --task dates
    seq2seq-rosetta compare runs/dates/model.safetensors --keras-backends tensorflow,jax,torch
    seq2seq-rosetta port s2s_model.keras --to torch --out s2s.safetensors --check
    seq2seq-rosetta export runs/dates/model.safetensors --format onnx --out runs/dates/onnx
    seq2seq-rosetta demo --quick
    seq2seq-rosetta experiment thought-vector --quick

A checkpoint written by either backend is read by both.  Every error (missing
or corrupt file, unknown task, bad flag, an --out that cannot be written, work
too big for memory, training that diverged, a replica that failed) is one line on stderr and exit
code 2, and whatever can be checked is checked before any work starts;
``compare`` exits 1 when the backends disagree beyond tolerance.  A
framework's own out-of-memory error (PyTorch's ``RuntimeError``, TensorFlow's
``ResourceExhaustedError``) is the same one line as a ``MemoryError``; Ctrl-C
ends with one line and exit code 130 (files are written whole or not at all,
so none is left half written).

One module per command in ``shared.app.commands``, each with ``add_parser`` and ``run``;
this module puts them together and turns every error into that one line.  It imports
no framework: a backend is imported when a command needs it.
"""

from __future__ import annotations

import errno
import sys

from shared.app.backends import BackendError
from shared.app.commands import (
    answer,
    compare,
    demo,
    evaluate,
    experiment,
    export,
    port,
    train,
)
from shared.app.flags import Parser, UsageError
from shared.app.quiet import quiet_tensorflow_import
from shared.checkpoint import CheckpointError
from shared.core.version import __version__
from shared.training.checks import TrainingDivergedError
from shared.training.replicas import ReplicaFailedError

# In the order --help lists them.
COMMANDS = (train, evaluate, answer, compare, port, export, demo, experiment)


def build_parser() -> Parser:
    parser = Parser(
        prog="seq2seq-rosetta",
        description="The same seq2seq LSTM or GRU in Keras and PyTorch: train, evaluate, "
                    "answer, compare, port, export, demo.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq-rosetta {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


# What an OSError's errno asks the user to do, beyond its words.
ADVICE = {
    errno.ENOSPC: "free some disk space, or write elsewhere (--out)",
    errno.EDQUOT: "free some disk space, or write elsewhere (--out)",
    errno.EROFS: "write elsewhere (--out)",
    errno.EACCES: "check the file's permissions",
    errno.EIO: "the device failed to read or write; check the file and the disk",
}
OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory",
                 "not enough memory", "resource_exhausted", "oom when allocating")


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 parity failure, 2 error, 130 Ctrl-C)."""
    try:
        args = build_parser().parse_args(argv)
        with quiet_tensorflow_import():  # whichever command imports it, and wherever
            return args.func(args)
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("\nseq2seq-rosetta: interrupted (Ctrl-C); nothing is left half written",
              file=sys.stderr)
        return 130
    except OSError as err:  # a missing or unreadable file: say which, without errno noise
        return _error(_os_error(err))
    except (UsageError, BackendError, CheckpointError, TrainingDivergedError, ReplicaFailedError,
            ValueError) as err:
        return _error(str(err))
    except Exception as err:  # a framework's out-of-memory error, whatever its class
        if not isinstance(err, MemoryError) and not _out_of_memory(err):
            raise
        detail = f" ({' '.join(str(err).split())[:200]})" if str(err).strip() else ""
        return _error(f"out of memory{detail}; use smaller sizes (--n, --batch-size, "
                      "--hidden-size, --embedding-dim, --max-length, --max-len, --beam)")


def _error(message: str) -> int:
    print(f"seq2seq-rosetta: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _os_error(err: OSError) -> str:
    """An OSError in words: what failed, on which file (never ": None"), what to do."""
    words = err.strerror or str(err) or type(err).__name__
    names = [name for name in (err.filename, err.filename2) if name is not None]
    where = f": {' -> '.join(map(str, names))}" if names else ""
    advice = ADVICE.get(err.errno)
    return f"{words}{where}" + (f"; {advice}" if advice else "")


def _out_of_memory(err: BaseException) -> bool:
    """PyTorch's and TensorFlow's words for memory that ran out, whatever their class."""
    text = str(err).lower()
    return type(err).__name__ == "ResourceExhaustedError" or any(
        words in text for words in OUT_OF_MEMORY)


if __name__ == "__main__":
    sys.exit(main())
