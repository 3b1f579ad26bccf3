"""``seq2seq-rosetta compare``: one checkpoint on every engine, climbed rung by rung.

    seq2seq-rosetta compare runs/dates/model.safetensors --task dates
    seq2seq-rosetta compare runs/dates/model.safetensors --keras-backends tensorflow,jax,torch
    seq2seq-rosetta compare runs/dates/model.safetensors --exported runs/dates/litert \
        --exported runs/dates/executorch

Every engine installed here (Keras on ``KERAS_BACKEND``, PyTorch, ONNX Runtime, and
the on-device engines on the folders ``--exported`` names, exported from this
checkpoint) climbs the parity ladder (``shared.ladder``) against the float64 NumPy
reference, then every pair is compared; one table.  With ``--keras-backends``, Keras runs on
each named backend in a process of its own (``shared.app.elsewhere``: Keras fixes
its backend at import), computes its side of the ladder there and sends the arrays
back, beside PyTorch and ONNX Runtime here.  Exit 1 when two sides differ beyond
the tolerances of ``shared.core.compare``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os

import numpy as np

from shared.app import flags
from shared.app.backends import (
    ENGINES,
    ON_DEVICE,
    BackendError,
    exported_model,
    load_backend,
    model_from_checkpoint,
    threads_for_both,
)
from shared.app.elsewhere import KERAS_BACKENDS, ElsewhereError, run_elsewhere
from shared.checkpoint import load_checkpoint
from shared.core.budget import MEMORY_CAP, check_memory
from shared.core.config import Seq2SeqConfig
from shared.ladder import (
    Inputs,
    Outputs,
    engine_name,
    engine_outputs,
    parity_bytes,
    parity_report,
    run_reference,
)
from shared.ondevice.folder import runtime_of
from shared.text.data import encode_questions, random_ids
from shared.text.tasks import TASKS, load_task

# compare's random questions are this wide; the built-in tasks' at most 20 characters.
RANDOM_QUESTION_WIDTH = 12
TASK_QUESTION_WIDTH = 20


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` command to ``subparsers`` (``shared.app.cli``'s)."""
    compare = subparsers.add_parser(
        "compare", help="run a checkpoint on every engine against the NumPy reference, and compare"
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
             "own process, beside PyTorch, ONNX Runtime and the NumPy reference",
    )
    compare.add_argument(
        "--exported", action="append", metavar="DIR", default=[],
        help="a folder `seq2seq-rosetta export --format litert|executorch` wrote from this "
             "checkpoint: its engine joins the table (repeat for each)")
    compare.set_defaults(func=run)
    return compare


def keras_backends(text: str) -> list[str]:
    """``tensorflow,jax,torch`` -> the list, each checked."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KERAS_BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(KERAS_BACKENDS)}; got {text!r}"
        )
    return list(dict.fromkeys(names))


def _check_compare_memory(args, config: Seq2SeqConfig, engines: int) -> None:
    """compare's arrays grow with --n and --max-len: refuse before making any question."""
    width = RANDOM_QUESTION_WIDTH if args.task is None else TASK_QUESTION_WIDTH
    per_question = parity_bytes(config, 1, width, args.max_len, engines)
    fit = MEMORY_CAP // per_question
    advice = f"lower --n (about {fit:,} fit) or --max-len" if fit else "lower --max-len"
    check_memory(parity_bytes(config, args.n, width, args.max_len, engines),
                 f"compare over {args.n} questions with --max-len {args.max_len}", advice)


def run(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    # Keras runs here on KERAS_BACKEND, or elsewhere on each backend named.
    # Keras runs here on KERAS_BACKEND, or elsewhere on each backend named; the on-device
    # engines run the folders named.
    here = [name for name in ENGINES if name not in ON_DEVICE
            and (name != "keras" or args.keras_backends is None)]
    exported = _exported(args.exported)
    _check_compare_memory(args, checkpoint.config,
                          len(here) + len(args.keras_backends or ()) + len(exported))
    if args.task is not None:
        questions = [q for q, _ in load_task(args.task, args.n, args.seed)]
        src = encode_questions(questions, checkpoint.src_tokenizer)         # (B, S)
    else:  # no task: random ids of mixed lengths, an empty row among them
        rng = np.random.default_rng(args.seed)
        lengths = rng.integers(0, RANDOM_QUESTION_WIDTH, size=args.n)
        src = random_ids(rng, lengths, checkpoint.config.src_vocab_size,
                         width=RANDOM_QUESTION_WIDTH)                       # (B, S)
    reference = run_reference(checkpoint.weights, checkpoint.config, src, max_len=args.max_len)
    outputs: dict[str, Outputs] = {}
    skipped = []
    for backend in args.keras_backends or ():
        missing = next((m for m in ("keras", backend) if importlib.util.find_spec(m) is None),
                       None)
        if missing is not None:
            skipped.append(f"keras/{backend} ({missing} is not installed)")
            continue
        try:
            outputs[f"keras/{backend}"] = run_elsewhere(
                "shared.app.commands.compare:keras_outputs",
                {"checkpoint": str(args.checkpoint), "inputs": reference.inputs.to_dict()},
                keras_backend=backend, threads=os.cpu_count() or 1)
        except ElsewhereError as err:
            raise flags.UsageError(str(err)) from err
    modules = []  # (engine, the folder it runs, or None: the checkpoint)
    for name, folder in [*((name, None) for name in here), *exported.items()]:
        try:
            modules.append((load_backend(name), folder))
        except BackendError:
            skipped.append(f"{name} (not installed: pip install 'seq2seq-rosetta[{name}]')")
    with threads_for_both():
        for module, folder in modules:
            model = model_from_checkpoint(module, checkpoint) if folder is None else \
                exported_model(module, folder, args.checkpoint)
            outputs[engine_name(module)] = engine_outputs(module, model, reference.inputs)
    if not outputs:
        raise flags.UsageError("no engine to compare is installed: pip install "
                               "'seq2seq-rosetta[torch]' (or keras, onnx)")
    report = parity_report(outputs, reference)
    if args.json:
        print(json.dumps({**report.to_dict(), "skipped": skipped}, indent=2))
    else:
        print(f"{', '.join(outputs)} and the NumPy reference on {len(src)} questions, "
              f"one checkpoint: {args.checkpoint}")
        print(report.table())
        for line in skipped:
            print(f"skipped: {line}")
    return 0 if report.ok else 1


def _exported(folders: list[str]) -> dict[str, str]:
    """{runtime: folder} of the ``--exported`` folders, one per runtime."""
    found: dict[str, str] = {}
    for folder in folders:
        runtime = runtime_of(folder)
        if runtime in found:
            raise flags.UsageError(f"--exported {found[runtime]} and {folder} both hold "
                                   f"{runtime} programs; give one folder per runtime")
        found[runtime] = folder
    return found


def keras_outputs(checkpoint: str, inputs: dict) -> Outputs:
    """Keras's side of the ladder on this process's backend (run by ``run_elsewhere``)."""
    keras_impl = load_backend("keras")
    model = model_from_checkpoint(keras_impl, load_checkpoint(checkpoint))
    return engine_outputs(keras_impl, model, Inputs.from_dict(inputs))
