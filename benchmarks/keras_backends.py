"""Keras on TensorFlow, JAX and PyTorch beside native PyTorch: one table, one run.

    python benchmarks/keras_backends.py [--backends tensorflow,jax,torch] [--rounds 3]
           [--quick] [--variants] [--decode] [--threads one|all] [--json]

Keras fixes its backend when it is first imported, so every backend needs a
process of its own.  This script measures benchmarks/train_step.py's figures (and,
with ``--decode``, benchmarks/decode.py's) once per backend per round, each in a
fresh process on that Keras backend (``shared.app.elsewhere`` calls the script's
``measure``: the figures its ``--json`` prints), and prints them side by side.
The order rotates from round to round (tensorflow, jax, torch; then jax, torch,
tensorflow; ...), so that a burst of load from another engineer's process falls
on a different backend each time; every figure is the median over rounds.  Each
run times its own torch_impl and torch_bare beside the two Keras contenders, so
each ratio is taken inside one process, where the four shared the same moment's
load, and then its median over rounds is printed.

Threads, the same for every backend (``--threads``):

    one  every process is pinned to one core (``os.sched_setaffinity``, before
         the frameworks load, through elsewhere's ``cores``):
         PyTorch 1 thread, TensorFlow intra-op 1 and inter-op 1, ONNX Runtime
         (decode.py) 1, and JAX, which has no thread-count setting (XLA sizes
         its CPU pool from the cores the process may run on), one core.
         Robust on a shared machine.
    all  every framework may use every core: PyTorch ``nproc`` threads,
         TensorFlow intra-op 1 and inter-op ``nproc`` (its best here,
         docs/performance.md), ONNX Runtime ``nproc``, JAX's own pool (one
         thread per core).

XLA_FLAGS, TF_ENABLE_ONEDNN_OPTS and OMP_NUM_THREADS are removed from the
processes' environment, so that these settings alone decide (oneDNN stays on,
as TensorFlow ships it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import load_average, machine
from shared.app.elsewhere import KERAS_BACKENDS, ElsewhereError, run_elsewhere

CONTENDERS = ("keras_impl", "keras_bare", "torch_impl", "torch_bare")
# (label, numerator, denominator): each taken inside one run, then the median over rounds.
RATIOS = (
    ("keras_impl/torch_impl", "keras_impl", "torch_impl"),
    ("keras_bare/torch_bare", "keras_bare", "torch_bare"),
    ("keras_impl/keras_bare", "keras_impl", "keras_bare"),
)
RUN_TIMEOUT_S = 1800
# Removed from each run's environment: the presets alone set the threads.
CLEARED = {name: None for name in ("XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS")}


def versions() -> dict:
    """The installed frameworks' versions, read without importing them."""
    found = {}
    for name in ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def thread_flags(threads: str, script: str = "train_step.py") -> list[str]:
    """``script``'s thread flags for the ``--threads`` preset (decode.py also runs onnx)."""
    cores = 1 if threads == "one" else os.cpu_count() or 1
    flags = ["--torch-threads", str(cores), "--tf-threads", f"1,{cores}"]
    return [*flags, "--onnx-threads", str(cores)] if script == "decode.py" else flags


def run_script(script: str, backend: str, flags: list[str], threads: str) -> dict:
    """One run of ``script`` on ``backend`` in a fresh process: its ``--json`` figures."""
    argv = [*flags, *thread_flags(threads, script)]
    try:
        return run_elsewhere(f"benchmarks.{Path(script).stem}:measure", {"argv": argv},
                             keras_backend=backend, cores=1 if threads == "one" else None,
                             env=CLEARED, timeout=RUN_TIMEOUT_S)
    except ElsewhereError as error:
        raise SystemExit(f"{script} {' '.join(argv)} failed: {error}") from None


def rotated(backends: list[str], round_index: int) -> list[str]:
    """The backends in this round's order: round r starts at backend r."""
    shift = round_index % len(backends)
    return backends[shift:] + backends[:shift]


def collect(args) -> dict:
    """{"train": {backend: [figures per round]}, "decode": {...}, "loads": [...]}."""
    backends = args.backends
    train_flags = ["--quick"] * args.quick + ["--variants"] * args.variants
    results: dict = {"train": {b: [] for b in backends}, "decode": {b: [] for b in backends},
                     "loads": []}
    for round_index in range(args.rounds):
        for backend in rotated(backends, round_index):
            load = load_average()
            results["loads"].append(load)
            figures = run_script("train_step.py", backend, train_flags, args.threads)
            results["train"][backend].append(figures)
            print(f"round {round_index + 1}, {backend:<10} train_step  load {load:4.2f}  "
                  + "  ".join(f"{k[:-3]} {v:.1f}" for k, v in figures.items()), flush=True)
            if args.decode:
                figures = run_script("decode.py", backend, ["--quick"] * args.quick,
                                     args.threads)
                results["decode"][backend].append(figures)
                print(f"round {round_index + 1}, {backend:<10} decode      "
                      + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    return results


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def train_table(train: dict) -> list[str]:
    """ms per step per contender, and the ratios, one row per backend."""
    head = f"{'keras backend':<14}" + "".join(f"{c:>12}" for c in CONTENDERS)
    head += "".join(f"{label:>23}" for label, _, _ in RATIOS)
    lines = ["training step, ms (median over rounds); ratios inside each run", head]
    for backend, runs in train.items():
        row = f"{backend:<14}" + "".join(f"{median_of(runs, c + '_ms'):12.1f}"
                                         for c in CONTENDERS)
        for _, top, bottom in RATIOS:
            ratio = statistics.median(run[top + "_ms"] / run[bottom + "_ms"] for run in runs)
            low = min(run[top + "_ms"] / run[bottom + "_ms"] for run in runs)
            high = max(run[top + "_ms"] / run[bottom + "_ms"] for run in runs)
            row += f"{ratio:>11.2f} ({low:.2f}-{high:.2f})"
        lines.append(row)
    extra = sorted({key for runs in train.values() for run in runs for key in run}
                   - {c + "_ms" for c in CONTENDERS})
    if extra:  # --variants: each variant over its own process's keras_bare or torch_bare
        lines.append("variants, ms (median over rounds); '-' where a backend has none")
        lines.append(f"{'keras backend':<14}" + "".join(f"{k[:-3]:>20}" for k in extra))
        for backend, runs in train.items():
            lines.append(f"{backend:<14}" + "".join(
                f"{median_of(runs, k):20.1f}" if k in runs[0] else f"{'-':>20}" for k in extra
            ))
    return lines


def decode_table(decode: dict) -> list[str]:
    """decode.py's figures (sentences per second, length scaling), one row per backend."""
    keys = list(next(iter(decode.values()))[0])
    lines = ["greedy decoding (median over rounds)",
             f"{'keras backend':<14}" + "".join(f"{k:>24}" for k in keys)]
    for backend, runs in decode.items():
        lines.append(f"{backend:<14}" + "".join(f"{median_of(runs, k):24.2f}" for k in keys))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(KERAS_BACKENDS),
                        type=lambda text: text.split(","),
                        help="comma-separated Keras backends (default: all three)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per backend (default 3)")
    parser.add_argument("--quick", action="store_true", help="pass --quick to each run")
    parser.add_argument("--variants", action="store_true",
                        help="pass --variants to train_step.py (XLA on TensorFlow, no mask, "
                             "packing)")
    parser.add_argument("--decode", action="store_true", help="also run decode.py")
    parser.add_argument("--threads", choices=("one", "all"), default="one",
                        help="the thread preset of every run (default: one)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    unknown = [b for b in args.backends if b not in KERAS_BACKENDS]
    if unknown or args.rounds < 1:
        parser.error(f"--backends takes {', '.join(KERAS_BACKENDS)} and --rounds >= 1; "
                     f"got {','.join(args.backends)} and {args.rounds}")

    info = {**machine(), **versions()}
    print(f"machine: {info}; threads: {args.threads} ({' '.join(thread_flags(args.threads))}"
          f"{', pinned to one core' if args.threads == 'one' else ''})", flush=True)
    results = collect(args)
    loads = results["loads"]
    print(f"load_1min before each run: {min(loads):.2f} to {max(loads):.2f} "
          f"(median {statistics.median(loads):.2f})")
    print("\n".join(train_table(results["train"])))
    if args.decode:
        print("\n".join(decode_table(results["decode"])))
    if args.json:
        print(json.dumps({"machine": info, "threads": args.threads, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
