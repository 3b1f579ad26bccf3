"""``seq2seq-rosetta answer``: answer questions with a checkpoint, on any engine.

    seq2seq-rosetta answer runs/dates/model.safetensors --backend keras "Nov 26, 2026"
"""

from __future__ import annotations

import argparse
import os

from shared.app import flags, limits
from shared.app.backends import ENGINES, load_backend, model_from_checkpoint
from shared.checkpoint import load_checkpoint
from shared.decoding.search import check_search_memory
from shared.text.data import encode_questions


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``answer`` command to ``subparsers`` (``shared.app.cli``'s)."""
    answer = subparsers.add_parser("answer", help="answer questions with a checkpoint")
    answer.add_argument("checkpoint")
    answer.add_argument("--backend", choices=ENGINES, required=True)
    answer.add_argument("--beam", type=flags.COUNT, default=1, help="beam size (1: greedy)")
    answer.add_argument("--max-len", type=flags.COUNT, default=40)
    answer.add_argument("questions", nargs="+", metavar="QUESTION")
    answer.set_defaults(func=run)
    return answer


def run(args) -> int:
    if os.path.isdir(args.checkpoint):
        raise flags.UsageError(
            f"checkpoint {args.checkpoint}: is a directory, not a checkpoint file; answer reads "
            "the checkpoint itself (it holds the tokenizers as well as the weights), not an "
            "export folder: give the model.safetensors it was trained into or exported from")
    checkpoint = load_checkpoint(args.checkpoint)
    beam = args.beam if args.beam > 1 else None  # 1: greedy
    check_search_memory(len(args.questions), args.max_len, beam, names=("--beam", "--max-len"))
    src = encode_questions(args.questions, checkpoint.src_tokenizer)          # (B, S)
    limits.check_decoding(checkpoint.config, len(args.questions), args.beam, args.max_len,
                          src.shape[1])
    backend = load_backend(args.backend)
    model = model_from_checkpoint(backend, checkpoint)
    if beam is not None:
        tokens = backend.beam_decode(model, src, beam, args.max_len)
    else:
        tokens = backend.greedy_decode(model, src, args.max_len)            # (B, max_len)
    for row in tokens:
        print(checkpoint.tgt_tokenizer.decode(row))
    return 0


