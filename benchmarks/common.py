"""Timing helpers shared by the benchmark scripts.

Every figure the scripts print is a median over repeats after warm-up: the
first calls of a framework trace graphs, allocate buffers and fill caches, and
a shared two-core machine adds noise that a median ignores better than a mean.
Contenders are timed in interleaved rounds (a few steps of each, then again),
so that a burst of load from another process hits all of them alike; each turn
starts with an untimed step, so that no contender pays for the one before it.

This module imports no framework; the scripts import the ones they time.  Thread
pools are set with ``shared.configure_threads``, one framework at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared.app.elsewhere import run_elsewhere
from shared.core.runtime import configure_threads
from shared.text.data import random_ids

REPO_ROOT = Path(__file__).resolve().parents[1]

# The model: V = 1000 on both sides, E = 128, H = 256, one layer.
VOCAB, EMBEDDING, HIDDEN = 1000, 128, 256


def prepare_environment() -> None:
    """Make the repository importable and quiet TensorFlow; call before any framework import."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def set_threads(torch_intra: int, tf_intra: int, tf_inter: int) -> None:
    """Set the thread pools of each framework already imported (``shared.configure_threads``).

    The defaults (``add_thread_arguments``) are each framework's best on a quiet
    2-core machine (docs/performance.md, benchmarks/threads.py): PyTorch runs an
    unpacked LSTM layer as one fused kernel and uses every core; TensorFlow runs
    the LSTM as a graph of many small ops and gains more from two ops at once
    (inter-op) than from two threads per op (intra-op).  TensorFlow takes its
    setting only before its first op.

    Args:
        torch_intra: PyTorch's threads per op (its inter-op pool, which these models
            do not use, gets 1).
        tf_intra: TensorFlow's threads per op.
        tf_inter: TensorFlow's ops run at once.
    """
    configure_threads(torch_intra, frameworks=("torch",))
    configure_threads(tf_intra, tf_inter, frameworks=("tensorflow",))


def benchmark_parser(doc: str, quick: str | None = None,
                     keras_backends: bool = False) -> argparse.ArgumentParser:
    """The flags the benchmarks share: ``--json``, and ``--quick`` / ``--keras-backends``.

    Args:
        doc: the script's module docstring; its first paragraph is the description.
        quick: the help of ``--quick`` (what it cuts), or None for a script without it.
        keras_backends: add ``--keras-backends LIST``: Keras on each, in its own process.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    if keras_backends:
        parser.add_argument("--keras-backends", help="comma-separated, each in its own process")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    return parser


def add_thread_arguments(parser) -> None:
    """``--torch-threads`` and ``--tf-threads`` with the defaults of ``set_threads``."""
    cores = os.cpu_count() or 1
    parser.add_argument("--torch-threads", type=int, default=cores,
                        help=f"PyTorch intra-op threads (default: all cores, {cores})")
    parser.add_argument("--tf-threads", default=f"1,{cores}", metavar="INTRA,INTER",
                        help=f"TensorFlow intra-op and inter-op threads (default: 1,{cores})")
    parser.add_argument("--onednn", choices=("on", "off"), default=None,
                        help="TensorFlow's oneDNN kernels (default: TensorFlow's choice, on)")


def apply_thread_arguments(args) -> tuple[int, int, int]:
    """Set the frameworks' pools from the parsed flags; return (torch, tf intra, tf inter)."""
    tf_intra, tf_inter = (int(n) for n in args.tf_threads.split(","))
    set_threads(args.torch_threads, tf_intra, tf_inter)
    return args.torch_threads, tf_intra, tf_inter


def set_onednn(args) -> None:
    """Export ``--onednn`` for TensorFlow; it reads the variable once, when it loads."""
    if args.onednn is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"


def start_frameworks(args) -> tuple[int, int, int]:
    """Load keras_impl and torch_impl as the flags say; return (torch, tf intra, tf inter).

    In this order: ``--onednn`` before TensorFlow loads, both frameworks loaded, then
    their pools set (``apply_thread_arguments``) before the first op.
    """
    set_onednn(args)
    prepare_environment()
    import keras_impl  # noqa: F401
    import torch_impl  # noqa: F401

    return apply_thread_arguments(args)


def interleaved_ms(
    contenders: dict[str, Callable[[], object]],
    rounds: int,
    steps: int,
    warmup: int,
    settle: int = 1,
) -> dict[str, float]:
    """Median milliseconds per call of each contender, timed in interleaved rounds.

    Args:
        contenders: name -> a function doing one unit of work (it must finish its
            work before returning: read the loss, not a lazy tensor).
        rounds: rounds of timing; each runs every contender ``steps`` times.
        steps: timed calls per contender per round.
        warmup: untimed calls of each contender first.
        settle: untimed calls at the start of each contender's turn in a round.  The
            first call after the other framework has run is slower (its thread
            pools still spin; benchmarks/threads.py measures that); the figures here
            are steady-state steps, as in a training loop.

    Returns:
        {name: median ms over rounds * steps calls}.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            for _ in range(settle):
                fn()
            for _ in range(steps):
                tic = time.perf_counter()
                fn()
                times[name].append(1e3 * (time.perf_counter() - tic))
    return {name: statistics.median(values) for name, values in times.items()}


def full_ids(rng: np.random.Generator, rows: int, length: int, vocab: int) -> np.ndarray:
    """int64 (rows, length) of real token ids, every row full: no padding."""
    return random_ids(rng, [length] * rows, vocab)


def load_average() -> float:
    """The 1-minute load average (how many processes wanted a core, on average)."""
    return os.getloadavg()[0]


def machine() -> dict:
    """The machine and library versions, for the record next to the figures."""
    info = {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_1min_now": round(load_average(), 2),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in ("torch", "tensorflow", "keras", "jax", "onnxruntime"):
        if name in sys.modules:
            info[name] = sys.modules[name].__version__
    if "keras" in sys.modules:
        info["keras_backend"] = sys.modules["keras"].backend.backend()
    info["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on)")
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_json_line(figures: dict) -> None:
    """The figures as one JSON line: the last line a ``--json`` run prints."""
    print(json.dumps({key: round(value, 4) for key, value in figures.items()}), flush=True)


def per_keras_backend(target: str, backends: str, kwargs: dict | None = None) -> dict:
    """Call ``target`` once per Keras backend, each in its own process; merge the dicts it returns.

    Keras fixes its backend when first imported, so each backend needs a process
    (``shared.app.elsewhere``).

    Args:
        target: "benchmarks.script:function", returning a dict of figures.
        backends: comma-separated Keras backends, e.g. "tensorflow,jax,torch".
        kwargs: the function's keyword arguments.
    """
    results = {}
    for backend in backends.split(","):
        results.update(run_elsewhere(target, kwargs, keras_backend=backend))
    return results
