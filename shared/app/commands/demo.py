"""``seq2seq-rosetta demo``: train both frameworks from one initialisation, swap, compare.

    seq2seq-rosetta demo --quick

The demo itself is ``shared.app.demo``; this is its command line.
"""

from __future__ import annotations

import argparse

from shared.app import flags
from shared.core.config import ATTENTIONS, CELLS
from shared.text.tasks import TASKS


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` command to ``subparsers`` (``shared.app.cli``'s)."""
    demo = subparsers.add_parser("demo", help="train both backends, swap checkpoints, compare")
    demo.add_argument("--quick", action="store_true", help="a smaller run (under a minute)")
    demo.add_argument("--task", choices=sorted(TASKS), default=None)
    demo.add_argument("--seed", type=flags.SEED, default=0)
    demo.add_argument("--cell", choices=CELLS, default="lstm", help="the recurrent cell")
    demo.add_argument("--attention", choices=ATTENTIONS, default="none",
                      help="give the decoder attention and draw one answer's weights in both "
                           "frameworks (attention.png)")
    demo.add_argument("--out", default="out/demo")
    demo.set_defaults(func=run)
    return demo


def run(args) -> int:
    from shared.app.demo import run_demo

    out = flags.output_dir(args.out)  # before the demo trains for a minute
    return run_demo(out=out, quick=args.quick, task=args.task, seed=args.seed, cell=args.cell,
                    attention=args.attention)


