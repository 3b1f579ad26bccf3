"""The ``seq2seq-rosetta`` command line: train, answer, compare, demo, experiment.

    seq2seq-rosetta train --backend torch --task dates --epochs 5 --out runs/dates
    seq2seq-rosetta answer runs/dates/model.safetensors --backend keras "Nov 26, 2026"
    seq2seq-rosetta compare runs/dates/model.safetensors --task dates
    seq2seq-rosetta demo --quick
    seq2seq-rosetta experiment thought-vector --quick

A checkpoint written by either backend is read by both.  Every error (missing
or corrupt file, unknown task, bad flag) is one line on stderr and exit code 2;
``compare`` exits 1 when the backends disagree beyond tolerance.

This module imports no framework: a backend is imported when a command needs it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from shared import __version__
from shared.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from shared.config import ATTENTIONS, CELLS, Seq2SeqConfig
from shared.data import batches, build_tokenizers, encode_questions, read_pairs
from shared.experiment import add_parser as add_experiment_parser
from shared.runtime import threads
from shared.tasks import TASKS, load_task

BACKENDS = ("keras", "torch")


class UsageError(Exception):
    """A mistake in how the command was called."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def load_backend(name: str):
    """``keras_impl`` or ``torch_impl``, imported now, with its threads set."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    try:
        module = importlib.import_module(f"{name}_impl")
    except ImportError as err:
        raise UsageError(
            f"the {name} backend is not installed ({err}); pip install 'seq2seq-rosetta[{name}]'"
        ) from err
    return module


def model_from_checkpoint(backend, checkpoint):
    model = backend.build_model(checkpoint.config)
    backend.import_weights(model, checkpoint.weights)
    return model


def _pairs(args) -> list[tuple[str, str]]:
    if args.data is not None:
        return read_pairs(args.data)
    return load_task(args.task, args.n, args.seed)


def cmd_train(args) -> int:
    pairs = _pairs(args)
    src_tok, tgt_tok = build_tokenizers(pairs, level=args.level)
    config = Seq2SeqConfig(
        src_vocab_size=len(src_tok),
        tgt_vocab_size=len(tgt_tok),
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bidirectional=args.bidirectional,
        dropout=args.dropout,
        cell=args.cell,
        attention=args.attention,
    )
    backend = load_backend(args.backend)
    model = backend.build_model(config, seed=args.seed)

    def epoch_batches(epoch: int):  # a new shuffle every epoch
        return batches(pairs, src_tok, tgt_tok, args.batch_size, seed=args.seed + epoch)

    history = backend.train(model, epoch_batches, args.epochs, lr=args.lr, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = backend.export_weights(model)
    save_checkpoint(out / "model.safetensors", weights, config, src_tok, tgt_tok)
    (out / "history.json").write_text(json.dumps(history, indent=2))
    print(f"saved {out / 'model.safetensors'} (final loss {history['loss'][-1]:.4f})")
    return 0


def cmd_answer(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    backend = load_backend(args.backend)
    model = model_from_checkpoint(backend, checkpoint)
    src = encode_questions(args.questions, checkpoint.src_tokenizer)          # (B, S)
    if args.beam > 1:
        tokens = backend.beam_decode(model, src, args.beam, args.max_len)
    else:
        tokens = backend.greedy_decode(model, src, args.max_len)            # (B, max_len)
    for row in tokens:
        print(checkpoint.tgt_tokenizer.decode(row))
    return 0


def cmd_compare(args) -> int:
    from shared.parity import parity_report

    checkpoint = load_checkpoint(args.checkpoint)
    if args.task is not None:
        questions = [q for q, _ in load_task(args.task, args.n, args.seed)]
        src = encode_questions(questions, checkpoint.src_tokenizer)         # (B, S)
    else:  # no task: random ids of mixed lengths, an empty row among them
        rng = np.random.default_rng(args.seed)
        lengths = rng.integers(0, 12, size=args.n)
        src = np.zeros((args.n, 12), dtype=np.int64)                        # (B, S)
        for row, n in enumerate(lengths):
            src[row, :n] = rng.integers(4, checkpoint.config.src_vocab_size, size=n)
    if args.keras_backends is not None:
        return _compare_engines(args, src)
    backends = [load_backend(name) for name in BACKENDS]
    with threads(intra_op=os.cpu_count() or 1, inter_op=2):  # see docs/performance.md
        models = [(backend, model_from_checkpoint(backend, checkpoint)) for backend in backends]
        report = parity_report(*models, src, max_len=args.max_len)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"keras vs torch on {len(src)} questions, one checkpoint: {args.checkpoint}")
        print(report.table())
    return 0 if report.ok else 1


def _keras_backends(text: str) -> list[str]:
    """``tensorflow,jax,torch`` -> the list, each checked."""
    from shared.engines import KERAS_BACKENDS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KERAS_BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(KERAS_BACKENDS)}; got {text!r}"
        )
    return list(dict.fromkeys(names))


def _compare_engines(args, src) -> int:
    """Every installed engine against the reference and against each other: one table."""
    from shared import engines

    checkpoint = load_checkpoint(args.checkpoint)
    ref, tgt_in = engines.reference_outputs(checkpoint, src, args.max_len)
    state_in = tuple(part.astype(np.float32) for part in ref.state)
    outputs, skipped = [ref], []
    for name in args.keras_backends:
        missing = engines.missing_for(name)
        if missing is not None:
            skipped.append(f"keras/{name} ({missing} is not installed)")
            continue
        try:
            outputs.append(engines.keras_outputs(name, args.checkpoint, src, tgt_in, state_in,
                                                 args.max_len))
        except RuntimeError as err:
            raise UsageError(str(err)) from err
    try:
        torch_impl = importlib.import_module("torch_impl")
    except ImportError:
        skipped.append("torch (torch is not installed)")
    else:
        with threads(intra_op=os.cpu_count() or 1, inter_op=2):
            model = model_from_checkpoint(torch_impl, checkpoint)
            outputs.append(engines.run_engine(torch_impl, model, src, tgt_in, state_in,
                                              args.max_len, "torch"))
    rows = engines.engine_table(outputs, tgt_in)
    if args.json:
        print(json.dumps({"ok": all(r.ok for r in rows), "skipped": skipped,
                          "pairs": [r.__dict__ for r in rows]}, indent=2))
    else:
        print(f"{len(outputs)} engines on {len(src)} questions, one checkpoint: "
              f"{args.checkpoint}")
        print(engines.format_engine_table(rows))
        for line in skipped:
            print(f"skipped: {line}")
    return 0 if all(r.ok for r in rows) else 1


def cmd_demo(args) -> int:
    from shared.demo import run_demo

    return run_demo(out=Path(args.out), quick=args.quick, task=args.task, seed=args.seed,
                    cell=args.cell)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seq2seq-rosetta",
        description="The same seq2seq LSTM in Keras and PyTorch: train, answer, compare, demo.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq-rosetta {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one backend, save a neutral checkpoint")
    train.add_argument("--backend", choices=BACKENDS, required=True)
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", choices=sorted(TASKS), help="a built-in generated task")
    source.add_argument("--data", help="a question<TAB>answer file (Tatoeba format)")
    train.add_argument("--n", type=int, default=4000, help="pairs to generate for --task")
    train.add_argument("--level", choices=("char", "word"), default="char")
    train.add_argument("--epochs", type=int, required=True)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--embedding-dim", type=int, default=32)
    train.add_argument("--hidden-size", type=int, default=128)
    train.add_argument("--num-layers", type=int, default=1)
    train.add_argument("--bidirectional", action="store_true")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--cell", choices=CELLS, default="lstm",
                       help="the recurrent cell: lstm hands off (h, c), gru hands off h")
    train.add_argument("--attention", choices=ATTENTIONS, default="none",
                       help="the decoder also reads every encoder output: luong (h_t^T W_a h_s) "
                            "or bahdanau (v_a^T tanh(W_1 h_t + W_2 h_s)); see docs/attention.md")
    train.add_argument("--lr", type=float, default=1e-2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="directory for model.safetensors, history.json")
    train.set_defaults(func=cmd_train)

    answer = sub.add_parser("answer", help="answer questions with a checkpoint")
    answer.add_argument("checkpoint")
    answer.add_argument("--backend", choices=BACKENDS, required=True)
    answer.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    answer.add_argument("--max-len", type=int, default=40)
    answer.add_argument("questions", nargs="+", metavar="QUESTION")
    answer.set_defaults(func=cmd_answer)

    compare = sub.add_parser("compare", help="run a checkpoint in both backends and compare")
    compare.add_argument("checkpoint")
    compare.add_argument("--task", choices=sorted(TASKS), help="questions from this task")
    compare.add_argument("--n", type=int, default=64, help="number of questions")
    compare.add_argument("--max-len", type=int, default=20)
    compare.add_argument("--seed", type=int, default=1)
    compare.add_argument("--json", action="store_true", help="print the figures as JSON")
    compare.add_argument(
        "--keras-backends", type=_keras_backends, metavar="LIST",
        help="run Keras on each of these backends (e.g. tensorflow,jax,torch), each in its "
             "own process, beside PyTorch and the NumPy reference: one table of every pair",
    )
    compare.set_defaults(func=cmd_compare)

    demo = sub.add_parser("demo", help="train both backends, swap checkpoints, compare")
    demo.add_argument("--quick", action="store_true", help="a smaller run (under a minute)")
    demo.add_argument("--task", choices=sorted(TASKS), default=None)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--cell", choices=CELLS, default="lstm", help="the recurrent cell")
    demo.add_argument("--out", default="out/demo")
    demo.set_defaults(func=cmd_demo)

    add_experiment_parser(sub)  # experiment thought-vector: shared/experiment.py
    return parser


def _positive(args) -> None:
    for flag in ("n", "epochs", "batch_size", "embedding_dim", "hidden_size", "num_layers",
                 "max_len", "beam"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1; got {value}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 parity failure, 2 error)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = build_parser().parse_args(argv)
        _positive(args)
        return args.func(args)
    except OSError as err:  # a missing or unreadable file: say which, without errno noise
        print(f"seq2seq-rosetta: error: {err.strerror or err}: {err.filename}", file=sys.stderr)
        return 2
    except (UsageError, CheckpointError, ValueError) as err:
        message = " ".join(str(err).split())  # one line, whatever the exception held
        print(f"seq2seq-rosetta: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
