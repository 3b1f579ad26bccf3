"""``seq2seq-rosetta compare``: one checkpoint on every engine, compared rung by rung.

    seq2seq-rosetta compare runs/dates/model.safetensors --task dates
    seq2seq-rosetta compare runs/dates/model.safetensors --keras-backends tensorflow,jax,torch

Exit 1 when two engines differ beyond the tolerances of ``shared.core.compare``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from shared.app import flags
from shared.app.backends import (
    TRAINERS,
    BackendError,
    load_backend,
    model_from_checkpoint,
    threads_for_both,
)
from shared.checkpoint import load_checkpoint
from shared.core.budget import MEMORY_CAP, check_memory
from shared.core.config import Seq2SeqConfig
from shared.ladder.parity import parity_bytes
from shared.text.data import encode_questions, random_ids
from shared.text.tasks import TASKS, load_task

# compare's random questions are this wide; the built-in tasks' at most 20 characters.
RANDOM_QUESTION_WIDTH = 12
TASK_QUESTION_WIDTH = 20


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` command to ``subparsers`` (``shared.app.cli``'s)."""
    compare = subparsers.add_parser(
        "compare", help="run a checkpoint in both backends and compare (and in onnx, if installed)"
    )
    compare.add_argument("checkpoint")
    compare.add_argument("--task", choices=sorted(TASKS), help="questions from this task")
    compare.add_argument("--n", type=flags.COUNT, default=64, help="number of questions")
    compare.add_argument("--max-len", type=flags.COUNT, default=20)
    compare.add_argument("--seed", type=flags.SEED, default=1)
    compare.add_argument("--json", action="store_true", help="print the figures as JSON")
    compare.add_argument(
        "--keras-backends", type=keras_backends, metavar="LIST",
        help="run Keras on each of these backends (e.g. tensorflow,jax,torch), each in its "
             "own process, beside PyTorch and the NumPy reference: one table of every pair",
    )
    compare.set_defaults(func=run)
    return compare


def _check_compare_memory(args, config: Seq2SeqConfig) -> None:
    """compare's arrays grow with --n and --max-len: refuse before making any question."""
    width = RANDOM_QUESTION_WIDTH if args.task is None else TASK_QUESTION_WIDTH
    per_question = parity_bytes(config, 1, width, args.max_len)
    fit = MEMORY_CAP // per_question
    advice = f"lower --n (about {fit:,} fit) or --max-len" if fit else "lower --max-len"
    check_memory(parity_bytes(config, args.n, width, args.max_len),
                 f"compare over {args.n} questions with --max-len {args.max_len}", advice)


def run(args) -> int:
    from shared.ladder.parity import parity_report

    checkpoint = load_checkpoint(args.checkpoint)
    _check_compare_memory(args, checkpoint.config)
    if args.task is not None:
        questions = [q for q, _ in load_task(args.task, args.n, args.seed)]
        src = encode_questions(questions, checkpoint.src_tokenizer)         # (B, S)
    else:  # no task: random ids of mixed lengths, an empty row among them
        rng = np.random.default_rng(args.seed)
        lengths = rng.integers(0, RANDOM_QUESTION_WIDTH, size=args.n)
        src = random_ids(rng, lengths, checkpoint.config.src_vocab_size,
                         width=RANDOM_QUESTION_WIDTH)                       # (B, S)
    if args.keras_backends is not None:
        return _compare_engines(args, src)
    backends = [load_backend(name) for name in TRAINERS]
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


def keras_backends(text: str) -> list[str]:
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
            raise flags.UsageError(str(err)) from err
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


