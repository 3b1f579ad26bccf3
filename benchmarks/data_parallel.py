"""Data-parallel training in figures: 1 and N replicas on each engine, speed and weights.

    python benchmarks/data_parallel.py [--replicas 2] [--quick] [--json]
           [--engines torch,tensorflow,jax]

Each engine trains the same model from the same weights on the same global batches
through its public API, ``train(model, batches, epochs=1, data_parallel=N)``, once with
one replica and once with N, each in a fresh process (``shared.app.elsewhere``: one
thread per framework, and on Keras N CPU devices made before the framework starts):

    engine  torch_impl (DDP ranks, gloo), keras_impl on TensorFlow (MirroredStrategy
            over logical CPUs), keras_impl on JAX (DataParallel over virtual CPUs)
    model   the benchmarks' LSTM (V 1000, E 128, H 256, one layer), Adam, lr 1e-3
    batches 64 rows, S = T = 20, rows of 10 to 20 real tokens (train_step.py's ragged
            batch, a new one per step); widths fixed, so nothing recompiles after the first

Each run trains W and then W + K steps; the steady step is their time difference / K,
and what the W-step run took beyond W steady steps is the start-up (torch: the ranks'
start and rendezvous; Keras: the trace or compile of the replicated step).  Printed per
engine and replica count:

    step_ms      steady milliseconds per global batch
    steps/s      1000 / step_ms
    tokens/s     real target tokens per second
    start_s      start-up seconds
    speed-up     steps/s with N replicas / steps/s with one
    max_diff     max |weights with N replicas - weights with one| after W + K steps

The load average is printed beside the table: on a shared machine the replicas compete
with other processes for the cores, and a loaded run says nothing about the engines.
docs/data-parallel.md gives the table with the machine, and where the time goes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import benchmark_parser, load_average, machine
from shared.app.elsewhere import run_elsewhere

# engine -> (package, Keras backend of its process: for torch_impl, one that starts nothing)
ENGINES = {"torch": ("torch_impl", "torch"), "tensorflow": ("keras_impl", "tensorflow"),
           "jax": ("keras_impl", "jax")}
WARMUP, STEPS, QUICK_STEPS = 3, 20, 6


def _batches(count: int) -> list:
    from benchmarks.train_step import synthetic_batch
    from shared.text.data import Batch

    return [Batch(*synthetic_batch(seed=step, ragged=True)) for step in range(count)]


def measure(package: str, replicas: int, steps: int) -> dict:
    """In a process of its own: W steps, then W + K steps, on ``replicas`` replicas."""
    import importlib

    from benchmarks.train_step import config
    from shared.layout import random_weights
    from shared.training.replicas import real_tokens

    module = importlib.import_module(package)
    weights = random_weights(config(), seed=3)
    batches = _batches(WARMUP + steps)
    seconds = {}
    for count in (WARMUP, WARMUP + steps):
        model = module.build_model(config())
        module.import_weights(model, weights)
        tic = time.perf_counter()
        module.train(model, batches[:count], epochs=1, optimizer="adam", lr=1e-3,
                     verbose=False, data_parallel=replicas)
        seconds[count] = time.perf_counter() - tic
    step_s = (seconds[WARMUP + steps] - seconds[WARMUP]) / steps
    tokens = np.mean([real_tokens(batch.tgt_out) for batch in batches])
    trained = module.export_weights(model)
    return {"step_ms": 1e3 * step_s, "steps_per_s": 1 / step_s, "tokens_per_s": tokens / step_s,
            "start_s": seconds[WARMUP] - WARMUP * step_s,
            "weights": {key: value.tolist() for key, value in trained.items()}}


def run(engines: list[str], replicas: int, steps: int) -> dict:
    """Every engine with 1 and ``replicas`` replicas; the figures per engine."""
    results = {}
    for engine in engines:
        package, keras_backend = ENGINES[engine]
        runs = {n: run_elsewhere("benchmarks.data_parallel:measure",
                                 {"package": package, "replicas": n, "steps": steps},
                                 keras_backend=keras_backend, threads=1,
                                 devices=None if package == "torch_impl" else replicas)
                for n in (1, replicas)}
        one, many = runs[1], runs[replicas]
        max_diff = max(float(np.abs(np.array(many["weights"][key]) - np.array(value)).max())
                       for key, value in one["weights"].items())
        results[engine] = {n: {k: v for k, v in figures.items() if k != "weights"}
                           for n, figures in runs.items()}
        results[engine]["speed_up"] = many["steps_per_s"] / one["steps_per_s"]
        results[engine]["max_diff"] = max_diff
    return results


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, quick=f"{QUICK_STEPS} timed steps instead of {STEPS}")
    parser.add_argument("--replicas", type=int, default=2, help="N (default 2)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, of {', '.join(ENGINES)}")
    args = parser.parse_args(argv)
    engines = args.engines.split(",")
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    load_before = load_average()
    results = run(engines, args.replicas, QUICK_STEPS if args.quick else STEPS)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'engine':<12}{'replicas':>9}{'step_ms':>9}{'steps/s':>9}{'tokens/s':>10}"
          f"{'start_s':>9}{'speed-up':>10}{'max_diff':>10}")
    for engine, figures in results.items():
        for n in (1, args.replicas):
            row = figures[n]
            extra = (f"{figures['speed_up']:>9.2f}x{figures['max_diff']:>10.1e}"
                     if n > 1 else "")
            print(f"{engine:<12}{n:>9}{row['step_ms']:>9.1f}{row['steps_per_s']:>9.1f}"
                  f"{row['tokens_per_s']:>10.0f}{row['start_s']:>9.1f}{extra}")
    print(f"load average {load_before:.1f} before, {load_average():.1f} after; "
          f"machine: {json.dumps(machine())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
