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
too big for memory, training that diverged) is one line on stderr and exit
code 2, and whatever can be checked is checked before any work starts;
``compare`` exits 1 when the backends disagree beyond tolerance.

This module imports no framework: a backend is imported when a command needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from shared import __version__
from shared.app.backends import (
    BACKENDS,
    ENGINES,
    BackendError,
    load_backend,
    model_from_checkpoint,
    threads_for_both,
)
from shared.app.commands import port as port_cli
from shared.app.experiment import add_parser as add_experiment_parser
from shared.app.quiet import quiet_tensorflow_import
from shared.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from shared.core.budget import MEMORY_CAP, check_memory
from shared.core.config import ATTENTIONS, CELLS, Seq2SeqConfig
from shared.core.inputs import SEED_RANGE
from shared.decoding.search import check_search_memory
from shared.ladder.parity import parity_bytes
from shared.text.data import (
    MAX_LENGTH,
    batches,
    build_tokenizers,
    drop_long_pairs,
    encode_questions,
    read_pairs,
)
from shared.text.tasks import TASKS, load_task
from shared.training.checks import TrainingDivergedError

# compare's random questions are this wide; the built-in tasks' at most 20 characters.
RANDOM_QUESTION_WIDTH = 12
TASK_QUESTION_WIDTH = 20


class UsageError(Exception):
    """A mistake in how the command was called."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _integer(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high]; argparse names the flag in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            shown = text if len(text) <= 30 else text[:30] + "..."
            raise argparse.ArgumentTypeError(f"invalid int value: {shown!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an integer {allowed}; got {value}")
        return value

    return parse


COUNT = _integer(1)
SEED = _integer(*SEED_RANGE)


def check_output_dir(text: str, flag: str = "--out") -> Path:
    """The directory a command will write to, refused now if it cannot be: before any work.

    It need not exist yet (it is created with its parents at the end), but it
    must not be a file, and its nearest existing folder must be writable.
    """
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {text} is a file, not a directory; give a directory to write "
                         "into (it is created if missing)")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {text} cannot be created: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {text} cannot be written: {existing} is not writable")
    return path


def _pairs(args) -> list[tuple[str, str]]:
    if args.data is not None:
        return read_pairs(args.data)
    return load_task(args.task, args.n, args.seed)


def cmd_train(args) -> int:
    out = check_output_dir(args.out)
    pairs = _pairs(args)
    src_tok, tgt_tok = build_tokenizers(pairs, level=args.level)
    kept, dropped = drop_long_pairs(pairs, src_tok, tgt_tok, args.max_length, "--max-length")
    if dropped:
        print(f"dropped {dropped} of {len(pairs)} pairs with a question or answer longer than "
              f"--max-length {args.max_length} tokens; training on {len(kept)}")
        pairs = kept
        src_tok, tgt_tok = build_tokenizers(pairs, level=args.level)  # their vocabulary only
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
        return batches(pairs, src_tok, tgt_tok, args.batch_size, seed=args.seed + epoch,
                       max_length=args.max_length)

    history = backend.train(model, epoch_batches, args.epochs, lr=args.lr, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    weights = backend.export_weights(model)
    save_checkpoint(out / "model.safetensors", weights, config, src_tok, tgt_tok)
    (out / "history.json").write_text(json.dumps(history, indent=2))
    print(f"saved {out / 'model.safetensors'} (final loss {history['loss'][-1]:.4f})")
    return 0


def cmd_answer(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    beam = args.beam if args.beam > 1 else None  # 1: greedy
    check_search_memory(len(args.questions), args.max_len, beam, names=("--beam", "--max-len"))
    backend = load_backend(args.backend)
    model = model_from_checkpoint(backend, checkpoint)
    src = encode_questions(args.questions, checkpoint.src_tokenizer)          # (B, S)
    if beam is not None:
        tokens = backend.beam_decode(model, src, beam, args.max_len)
    else:
        tokens = backend.greedy_decode(model, src, args.max_len)            # (B, max_len)
    for row in tokens:
        print(checkpoint.tgt_tokenizer.decode(row))
    return 0


def _check_compare_memory(args, config: Seq2SeqConfig) -> None:
    """compare's arrays grow with --n and --max-len: refuse before making any question."""
    width = RANDOM_QUESTION_WIDTH if args.task is None else TASK_QUESTION_WIDTH
    per_question = parity_bytes(config, 1, width, args.max_len)
    fit = MEMORY_CAP // per_question
    advice = f"lower --n (about {fit:,} fit) or --max-len" if fit else "lower --max-len"
    check_memory(parity_bytes(config, args.n, width, args.max_len),
                 f"compare over {args.n} questions with --max-len {args.max_len}", advice)


def cmd_compare(args) -> int:
    from shared.ladder.parity import parity_report

    checkpoint = load_checkpoint(args.checkpoint)
    _check_compare_memory(args, checkpoint.config)
    if args.task is not None:
        questions = [q for q, _ in load_task(args.task, args.n, args.seed)]
        src = encode_questions(questions, checkpoint.src_tokenizer)         # (B, S)
    else:  # no task: random ids of mixed lengths, an empty row among them
        rng = np.random.default_rng(args.seed)
        lengths = rng.integers(0, RANDOM_QUESTION_WIDTH, size=args.n)
        src = np.zeros((args.n, RANDOM_QUESTION_WIDTH), dtype=np.int64)     # (B, S)
        for row, n in enumerate(lengths):
            src[row, :n] = rng.integers(4, checkpoint.config.src_vocab_size, size=n)
    if args.keras_backends is not None:
        return _compare_engines(args, src)
    backends = [load_backend(name) for name in BACKENDS]
    with threads_for_both():
        models = [(backend, model_from_checkpoint(backend, checkpoint)) for backend in backends]
        report = parity_report(*models, src, max_len=args.max_len)
        onnx_report = _onnx_parity(checkpoint, models[1], src, args.max_len)
    ok = report.ok and (onnx_report is None or onnx_report.ok)
    if args.json:
        figures = {**report.to_dict(), "ok": ok}
        if onnx_report is not None:
            figures["onnx_vs_torch"] = onnx_report.to_dict()
        print(json.dumps(figures, indent=2))
    else:
        print(f"keras vs torch on {len(src)} questions, one checkpoint: {args.checkpoint}")
        print(report.table())
        if onnx_report is None:
            print("onnx: not installed (pip install 'seq2seq-rosetta[onnx]'), not compared")
        else:
            print("torch vs onnx, the same questions and checkpoint")
            print(onnx_report.table())
    return 0 if ok else 1


def _onnx_parity(checkpoint, torch_pair, src: np.ndarray, max_len: int):
    """torch_impl against onnx_impl on one checkpoint, or None where onnxruntime is missing."""
    from shared.ladder.parity import parity_report

    try:
        onnx_backend = load_backend("onnx")
    except BackendError:
        return None
    onnx_pair = (onnx_backend, model_from_checkpoint(onnx_backend, checkpoint))
    return parity_report(torch_pair, onnx_pair, src, max_len=max_len)


def cmd_export(args) -> int:
    out = check_output_dir(args.out)
    try:
        from shared.onnx.export import export_checkpoint
    except ImportError as err:
        raise UsageError(
            f"export --format onnx needs the onnx package ({err}); "
            "pip install 'seq2seq-rosetta[onnx]'"
        ) from err
    paths = export_checkpoint(args.checkpoint, out)
    print(f"wrote {paths['encoder']} and {paths['decoder']}")
    return 0


def _keras_backends(text: str) -> list[str]:
    """``tensorflow,jax,torch`` -> the list, each checked."""
    from shared.app.engines import KERAS_BACKENDS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KERAS_BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(KERAS_BACKENDS)}; got {text!r}"
        )
    return list(dict.fromkeys(names))


def _compare_engines(args, src) -> int:
    """Every installed engine against the reference and against each other: one table."""
    from shared.app import engines

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
        torch_impl = load_backend("torch")
    except BackendError:
        skipped.append("torch (torch is not installed)")
    else:
        with threads_for_both():
            model = model_from_checkpoint(torch_impl, checkpoint)
            outputs.append(engines.run_engine(torch_impl, model, src, tgt_in, state_in,
                                              args.max_len, "torch"))
    try:
        onnx_impl = load_backend("onnx")
    except BackendError:
        skipped.append("onnx (onnxruntime is not installed)")
    else:
        model = model_from_checkpoint(onnx_impl, checkpoint)
        outputs.append(engines.run_engine(onnx_impl, model, src, tgt_in, state_in, args.max_len,
                                          "onnx"))
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
    from shared.app.demo import run_demo

    out = check_output_dir(args.out)  # before the demo trains for a minute
    return run_demo(out=out, quick=args.quick, task=args.task, seed=args.seed, cell=args.cell,
                    attention=args.attention)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seq2seq-rosetta",
        description="The same seq2seq LSTM or GRU in Keras and PyTorch: train, answer, "
                    "compare, port, export, demo.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq-rosetta {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one backend, save a neutral checkpoint")
    train.add_argument("--backend", choices=BACKENDS, required=True)
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", choices=sorted(TASKS), help="a built-in generated task")
    source.add_argument("--data", help="a question<TAB>answer file (Tatoeba format)")
    train.add_argument("--n", type=COUNT, default=4000, help="pairs to generate for --task")
    train.add_argument("--level", choices=("char", "word"), default="char")
    train.add_argument("--epochs", type=COUNT, required=True)
    train.add_argument("--batch-size", type=COUNT, default=64)
    train.add_argument("--embedding-dim", type=COUNT, default=32)
    train.add_argument("--hidden-size", type=COUNT, default=128)
    train.add_argument("--num-layers", type=COUNT, default=1)
    train.add_argument("--bidirectional", action="store_true")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--cell", choices=CELLS, default="lstm",
                       help="the recurrent cell: lstm hands off (h, c), gru hands off h")
    train.add_argument("--max-length", type=COUNT, default=MAX_LENGTH,
                       help="drop pairs whose question or answer has more tokens than this")
    train.add_argument("--attention", choices=ATTENTIONS, default="none",
                       help="the decoder also reads every encoder output: luong (h_t^T W_a h_s) "
                            "or bahdanau (v_a^T tanh(W_1 h_t + W_2 h_s)); see docs/attention.md")
    train.add_argument("--lr", type=float, default=1e-2)
    train.add_argument("--seed", type=SEED, default=0)
    train.add_argument("--out", required=True, help="directory for model.safetensors, history.json")
    train.set_defaults(func=cmd_train)

    answer = sub.add_parser("answer", help="answer questions with a checkpoint")
    answer.add_argument("checkpoint")
    answer.add_argument("--backend", choices=ENGINES, required=True)
    answer.add_argument("--beam", type=COUNT, default=1, help="beam size (1: greedy)")
    answer.add_argument("--max-len", type=COUNT, default=40)
    answer.add_argument("questions", nargs="+", metavar="QUESTION")
    answer.set_defaults(func=cmd_answer)

    compare = sub.add_parser(
        "compare", help="run a checkpoint in both backends and compare (and in onnx, if installed)"
    )
    compare.add_argument("checkpoint")
    compare.add_argument("--task", choices=sorted(TASKS), help="questions from this task")
    compare.add_argument("--n", type=COUNT, default=64, help="number of questions")
    compare.add_argument("--max-len", type=COUNT, default=20)
    compare.add_argument("--seed", type=SEED, default=1)
    compare.add_argument("--json", action="store_true", help="print the figures as JSON")
    compare.add_argument(
        "--keras-backends", type=_keras_backends, metavar="LIST",
        help="run Keras on each of these backends (e.g. tensorflow,jax,torch), each in its "
             "own process, beside PyTorch and the NumPy reference: one table of every pair",
    )
    compare.set_defaults(func=cmd_compare)

    export = sub.add_parser("export", help="write a checkpoint as encoder.onnx and decoder.onnx")
    export.add_argument("checkpoint")
    export.add_argument("--format", choices=("onnx",), default="onnx",
                        help="the file format (one so far: onnx; see docs/onnx.md)")
    export.add_argument("--out", required=True, help="folder for encoder.onnx and decoder.onnx")
    export.set_defaults(func=cmd_export)

    demo = sub.add_parser("demo", help="train both backends, swap checkpoints, compare")
    demo.add_argument("--quick", action="store_true", help="a smaller run (under a minute)")
    demo.add_argument("--task", choices=sorted(TASKS), default=None)
    demo.add_argument("--seed", type=SEED, default=0)
    demo.add_argument("--cell", choices=CELLS, default="lstm", help="the recurrent cell")
    demo.add_argument("--attention", choices=ATTENTIONS, default="none",
                      help="give the decoder attention and draw one answer's weights in both "
                           "frameworks (attention.png)")
    demo.add_argument("--out", default="out/demo")
    demo.set_defaults(func=cmd_demo)
    port_cli.add_parser(sub)

    add_experiment_parser(sub)  # experiment thought-vector: shared/app/experiment.py
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
    except (UsageError, BackendError, CheckpointError, TrainingDivergedError, ValueError) as err:
        message = " ".join(str(err).split())  # one line, whatever the exception held
        print(f"seq2seq-rosetta: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
