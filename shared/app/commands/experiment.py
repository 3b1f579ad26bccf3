"""``seq2seq-rosetta experiment thought-vector``: the experiment's command line.

    seq2seq-rosetta experiment thought-vector --quick

The experiment itself is ``shared.app.experiment``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.app import flags
from shared.app.backends import TRAINERS, load_backend
from shared.app.experiment import FULL, QUICK, RULES, Settings, run_experiment
from shared.core.config import CELLS
from shared.core.runtime import threads


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,128,256; got {text!r}")
    return sizes


def _lengths(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        low = high = 0
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected SHORTEST,LONGEST like 4,40; got {text!r}")
    return low, high


def _tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(part.strip() for part in text.split(",") if part.strip())
    if not tasks or set(tasks) - set(RULES):
        raise argparse.ArgumentTypeError(f"expected tasks among {', '.join(RULES)}; got {text!r}")
    return tasks


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``experiment`` command to ``subparsers`` (``shared.app.cli``'s)."""
    parser = subparsers.add_parser("experiment", help="measure a claim: thought-vector")
    parser.add_argument("name", choices=["thought-vector"],
                        help="thought-vector: accuracy against question length, without "
                             "attention at several hidden sizes and with attention")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smaller run: {', '.join(QUICK.tasks)}, H "
                             f"{','.join(map(str, QUICK.hidden_sizes))}, lengths "
                             f"{QUICK.lengths[0]}-{QUICK.lengths[1]}, {QUICK.steps} steps")
    parser.add_argument("--backend", choices=TRAINERS, default="torch")
    parser.add_argument("--cell", choices=CELLS, default=None)
    parser.add_argument("--tasks", type=_tasks, default=None, help="e.g. reverse,sort")
    parser.add_argument("--hidden-sizes", type=_sizes, default=None, help="e.g. 64,128,256,512")
    parser.add_argument("--lengths", type=_lengths, default=None, help="SHORTEST,LONGEST")
    parser.add_argument("--steps", type=flags.COUNT, default=None, help="Adam steps per model")
    parser.add_argument("--eval-per-length", type=flags.COUNT, default=None)
    parser.add_argument("--seed", type=flags.SEED, default=0)
    parser.add_argument("--out", default="out/thought-vector")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    settings = QUICK if args.quick else FULL
    changes = {field: getattr(args, field) for field in
               ("tasks", "hidden_sizes", "lengths", "steps", "eval_per_length", "cell")
               if getattr(args, field) is not None}
    settings = Settings(**{**settings.__dict__, **changes})
    backend = load_backend(args.backend)
    # One thread per op: the figures do not depend on how a product is split across cores.
    with threads(intra_op=1, inter_op=1):
        run_experiment(backend, settings, Path(args.out), seed=args.seed)
    return 0
