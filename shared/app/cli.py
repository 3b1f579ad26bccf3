"""The ``seq2seq-rosetta`` command line: train, answer, compare, port, export, demo, experiment.

    seq2seq-rosetta train --backend torch --task dates --epochs 5 --out runs/dates
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
``compare`` exits 1 when the backends disagree beyond tolerance.

One module per command in ``shared.app.commands``, each with ``add_parser`` and ``run``;
this module puts them together and turns every error into that one line.  It imports
no framework: a backend is imported when a command needs it.
"""

from __future__ import annotations

import sys

from shared.app.backends import BackendError
from shared.app.commands import answer, compare, demo, experiment, export, port, train
from shared.app.flags import Parser, UsageError
from shared.app.quiet import quiet_tensorflow_import
from shared.checkpoint import CheckpointError
from shared.core.version import __version__
from shared.training.checks import TrainingDivergedError
from shared.training.replicas import ReplicaFailedError

# In the order --help lists them.
COMMANDS = (train, answer, compare, port, export, demo, experiment)


def build_parser() -> Parser:
    parser = Parser(
        prog="seq2seq-rosetta",
        description="The same seq2seq LSTM or GRU in Keras and PyTorch: train, answer, "
                    "compare, port, export, demo.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq-rosetta {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 parity failure, 2 error)."""
    try:
        args = build_parser().parse_args(argv)
        with quiet_tensorflow_import():  # whichever command imports it, and wherever
            return args.func(args)
    except OSError as err:  # a missing or unreadable file: say which, without errno noise
        print(f"seq2seq-rosetta: error: {err.strerror or err}: {err.filename}", file=sys.stderr)
        return 2
    except MemoryError as err:  # what no estimate foresaw: still one line, with what to lower
        detail = f" ({err})" if str(err) else ""
        print(f"seq2seq-rosetta: error: out of memory{detail}; use smaller sizes (--n, "
              "--batch-size, --hidden-size, --max-length, --max-len, --beam)", file=sys.stderr)
        return 2
    except (UsageError, BackendError, CheckpointError, TrainingDivergedError, ReplicaFailedError,
            ValueError) as err:
        message = " ".join(str(err).split())  # one line, whatever the exception held
        print(f"seq2seq-rosetta: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
