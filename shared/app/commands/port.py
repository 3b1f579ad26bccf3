"""``seq2seq-rosetta port``: the command, registered by ``shared.app.cli`` with ``add_parser``.

    seq2seq-rosetta port SRC --to {torch|keras} --out DST [--check] [--partial]
                         [--tf1-forget-bias 1.0] [--linear NAME ...]

The report goes to stdout.  On an error (a file that cannot be read, a layer the
target cannot express, a bad flag) ``shared.app.cli.main`` prints one line on stderr
and exits 2, and nothing is written; with ``--check``, exit 1 when a layer
differs by more than the tolerance (DST is written: the table says where).

Frameworks log on stderr while they read and run (TF1's deprecation warnings,
C++ log lines).  So that an error is the only line there, stderr is held back
while the port runs and dropped on an error; a port that succeeds replays it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile

from shared.app import flags
from shared.port.api import port
from shared.port.layers import TARGETS
from shared.port.readers.tf1 import FORGET_BIAS_RANGE


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``port`` command to ``subparsers`` (``shared.app.cli``'s)."""
    parser = subparsers.add_parser(
        "port", help="port a model file's layers to torch or keras, with a proof per layer",
        description="Read a .keras/.h5 model, a PyTorch state_dict (.pt/.pth/.bin/.safetensors), "
                    "a TF1 checkpoint or an ONNX model, and write its LSTM, GRU, embedding and "
                    "dense layers for PyTorch or Keras (docs/porting.md).",
    )
    parser.add_argument("src", metavar="SRC", help="the model file, or a TF1 checkpoint prefix")
    parser.add_argument("--to", choices=TARGETS, required=True, help="the target framework")
    parser.add_argument("--out", required=True, metavar="DST",
                        help="the file to write: .safetensors (or .pt for torch)")
    parser.add_argument("--check", action="store_true",
                        help="run every ported layer in the target and in the source; exit 1 "
                             "when any differs by more than 1e-5")
    parser.add_argument("--partial", action="store_true",
                        help="port every layer the target can express and list the others "
                             "(type, parameter count, why) in the report and DST's metadata")
    parser.add_argument("--tf1-forget-bias", type=flags.bounded_number(*FORGET_BIAS_RANGE),
                        default=1.0, metavar="B",
                        help="the TF1 LSTM cells' forget_bias, folded into the forget-gate bias "
                             "(default 1.0, TF1's; a finite number in [-100, 100])")
    parser.add_argument("--linear", action="append", default=[], metavar="NAME",
                        help="a PyTorch module whose lone weight is a bias-free nn.Linear, not an "
                             "nn.Embedding (repeatable)")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run one port; 0 when done (and checked), 1 when the check fails; errors raise."""
    with _held_stderr():
        report = port(args.src, args.to, args.out, check=args.check,
                      tf1_forget_bias=args.tf1_forget_bias, linear=tuple(args.linear),
                      partial=args.partial)
    print(report.text())
    return 0 if report.ok else 1


@contextlib.contextmanager
def _held_stderr():
    """Hold back what is written to stderr, by Python and by C++; replay it unless an error."""
    sys.stderr.flush()
    saved = os.dup(2)
    python = io.StringIO()
    with tempfile.TemporaryFile() as native:
        os.dup2(native.fileno(), 2)
        failed = True
        try:
            with contextlib.redirect_stderr(python):
                yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:
                native.seek(0)
                sys.stderr.write(native.read().decode("utf-8", "replace") + python.getvalue())
