"""``seq2seq-rosetta evaluate``: a checkpoint's held-out figures, on any engine.

    seq2seq-rosetta evaluate runs/dates/model.safetensors --task dates --backend onnx
    seq2seq-rosetta evaluate runs/mine/model.safetensors --data test.tsv --backend keras --json

One line per figure (``--json``: one object): the held-out loss, exact match, token
accuracy, BLEU and chrF (``shared.training.metrics`` defines them).  The pairs:

    --data FILE                  every pair of FILE (a test set), or with --val-split F
                                 the pairs ``train --data FILE --val-split F`` held out
    --task T                     the pairs ``train --task T`` held out, for the same
                                 --n, --seed, --max-length and --val-split (default 0.1)

The checkpoint gives the same greedy answers on every engine, so exact match, BLEU
and chrF are equal on all of them, and the loss and token accuracy agree to float32
rounding (tests/test_cli_training.py holds them to it).
"""

from __future__ import annotations

import argparse
import json
import sys

from shared.app import flags
from shared.app.backends import ENGINES, load_backend, model_from_checkpoint
from shared.app.commands.train import add_data_flags, held_out_pairs, read_data
from shared.checkpoint import load_checkpoint
from shared.training.evaluation import FIGURES, evaluate
from shared.training.heldout import DEFAULT_FRACTION, held_out_count

NAMES = {"loss": "held-out loss", "exact_match": "exact match", "token_accuracy": "token accuracy",
         "bleu": "BLEU", "chrf": "chrF"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to ``subparsers`` (``shared.app.cli``'s)."""
    parser = subparsers.add_parser(
        "evaluate", help="a checkpoint's held-out loss, exact match, token accuracy, BLEU and chrF",
        description="Score a checkpoint on question/answer pairs with any engine: every pair of "
                    "--data, the pairs train held out of it (--data with --val-split), or those "
                    "it held out for --task. One line per figure; docs/training.md defines them.")
    parser.add_argument("checkpoint", help="a .safetensors checkpoint written by train or port")
    parser.add_argument("--backend", choices=ENGINES, required=True,
                        help="the engine that runs the model")
    add_data_flags(parser)
    parser.add_argument("--batch-size", type=flags.COUNT, default=64, help="pairs per batch")
    parser.add_argument("--max-len", type=flags.COUNT, default=None,
                        help="the most tokens per greedy answer (default: twice the longest "
                             "reference, plus EOS)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    # Notes go to stderr: stdout holds the figures alone (one JSON object with --json).
    pairs = read_data(args, checkpoint.tgt_tokenizer.level, using="scoring",
                      say=lambda line: print(line, file=sys.stderr))
    if args.task is not None or args.val_split is not None:
        fraction = DEFAULT_FRACTION if args.val_split is None else args.val_split
        count = held_out_count(fraction, len(pairs))
        if count < 1 or (args.data is not None and count >= len(pairs)):
            raise flags.UsageError(f"--val-split {fraction:g} of {len(pairs)} pairs holds out "
                                   f"{count}; nothing to score")
        pairs = held_out_pairs(args, pairs, count)[1]
    backend = load_backend(args.backend)
    model = model_from_checkpoint(backend, checkpoint)
    metrics = evaluate(backend, model, pairs, checkpoint.src_tokenizer, checkpoint.tgt_tokenizer,
                       batch_size=args.batch_size, max_len=args.max_len)
    if args.json:
        print(json.dumps({**metrics.as_dict(), "backend": args.backend}))
        return 0
    for figure in FIGURES:
        print(f"{NAMES[figure]:<15} {getattr(metrics, figure):.4f}")
    print(f"{'pairs':<15} {metrics.pairs}")
    return 0
