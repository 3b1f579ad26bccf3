"""``seq2seq-rosetta experiment thought-vector``: the experiment's command line.

    seq2seq-rosetta experiment thought-vector --quick

The experiment itself is ``shared.app.experiment``.
"""

from __future__ import annotations

import argparse

from shared.app import flags, limits
from shared.app.backends import TRAINERS, load_backend
from shared.app.experiment import ALPHABET, FULL, OUTPUTS, QUICK, RULES, Settings, run_experiment
from shared.core.config import CELLS, Seq2SeqConfig
from shared.core.runtime import threads
from shared.text.data import build_tokenizers


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
    out = flags.output_dir(args.out)  # before the experiment trains for minutes
    settings = QUICK if args.quick else FULL
    changes = {field: getattr(args, field) for field in
               ("tasks", "hidden_sizes", "lengths", "steps", "eval_per_length", "cell")
               if getattr(args, field) is not None}
    settings = Settings(**{**settings.__dict__, **changes})
    check_settings(settings)
    flags.say_replaced(out, OUTPUTS)
    backend = load_backend(args.backend)
    # One thread per op: the figures do not depend on how a product is split across cores.
    with threads(intra_op=1, inter_op=1):
        run_experiment(backend, settings, out, seed=args.seed)
    return 0


def check_settings(settings: Settings) -> None:
    """Refuses sizes whose batches or largest model would not fit, before anything trains."""
    longest = settings.lengths[1] + 1  # a question, and BOS or EOS
    limits.check_schedule(settings.steps * settings.batch_size, longest, 1,
                          flags="--steps or --lengths")
    tokens = len(build_tokenizers([(ALPHABET, ALPHABET)])[0])  # as run_experiment builds them
    hidden = max(settings.hidden_sizes)
    for attention in ("none", "luong"):  # the largest model, and the attending one
        size = hidden if attention == "none" else min(settings.hidden_sizes)
        config = Seq2SeqConfig(tokens, tokens, settings.embedding_dim, size,
                               cell=settings.cell, attention=attention)
        limits.check_training(config, settings.batch_size, longest, longest,
                              flags="--hidden-sizes or --lengths")
