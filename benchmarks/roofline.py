"""The roofline: how fast could a training step be on this machine?

    python benchmarks/roofline.py [--quick] [--json]

Almost all of a step's arithmetic is matrix multiplies, so the least time a
step can take is the time of its multiplies, each run at the best speed this
machine reaches for float32 at that shape.  Comparing that floor with the
measured step (benchmarks/train_step.py) says how close to the limit each
implementation runs.

The multiplies of one step (B = 64, S = T = 20, E = 128, H = 256, V = 1000; a
multiply-add counts 2 FLOPs), forward and backward:

    input projections   x @ W_ih^T for all steps at once, encoder and decoder,
                        and its two gradients (wrt x, wrt W_ih)         3 x 2 (S + T) B E 4H
    recurrence          h_{t-1} @ W_hh^T one step at a time, and the
                        gradient wrt h_{t-1}, also step by step          2 x 2 (S + T) B H 4H
    recurrent weights   the gradient wrt W_hh, summed over all steps
                        in one multiply per LSTM                         1 x 2 (S + T) B H 4H
    output layer        outputs @ W_out^T and its two gradients          3 x 2 T B H V

That is 3x the forward multiplies, 8.0 GFLOP.  Gate nonlinearities, softmax and
Adam are elementwise, about 1% of the FLOPs, and left out.  The step-by-step
recurrence is the slow part: a (64, 256) x (256, 1024) multiply is too small to
run at full speed, and step t cannot start before step t-1 ends.

Each shape is timed with PyTorch (MKL) and NumPy (OpenBLAS) at 1 and 2 threads,
each thread count in a fresh process (OpenBLAS reads its thread count when it
loads; ``shared.app.elsewhere`` starts the process with it set).  The floor
takes the faster library and its fastest repeat: other processes on a shared
machine can only add time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# `python benchmarks/x.py` puts benchmarks/ on sys.path; the imports need the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import EMBEDDING, HIDDEN, VOCAB, benchmark_parser, machine
from shared.app.elsewhere import run_elsewhere

BATCH, LENGTH = 64, 20


def step_matmuls(
    B: int = BATCH, S: int = LENGTH, T: int = LENGTH,
    E: int = EMBEDDING, H: int = HIDDEN, V: int = VOCAB,
) -> dict[str, tuple[tuple[int, int, int], int]]:
    """{part: ((m, k, n) of one multiply, how many run per training step)}; see the docstring."""
    return {
        "encoder input projection": ((B * S, E, 4 * H), 3),
        "decoder input projection": ((B * T, E, 4 * H), 3),
        "recurrence, step by step": ((B, H, 4 * H), 2 * (S + T)),
        "encoder recurrent weights": ((4 * H, B * S, H), 1),
        "decoder recurrent weights": ((4 * H, B * T, H), 1),
        "output layer": ((B * T, H, V), 3),
    }


def step_flops(**sizes) -> float:
    """FLOPs of the multiplies of one training step (forward and backward)."""
    return sum(2 * m * k * n * count for (m, k, n), count in step_matmuls(**sizes).values())


def _gflops(multiply, flops: float, repeats: int) -> float:
    for _ in range(5):
        multiply()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        multiply()
        times.append(time.perf_counter() - tic)
    return flops / min(times) / 1e9


def worker(threads: int, quick: bool) -> dict:
    """{"torch"|"numpy": {part: GFLOP/s}} at ``threads``, in a process started with them."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    repeats = 30 if quick else 200
    rates: dict[str, dict[str, float]] = {"torch": {}, "numpy": {}}
    for part, ((m, k, n), _) in step_matmuls().items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        rates["torch"][part] = _gflops(lambda ta=ta, tb=tb: ta @ tb, 2 * m * k * n, repeats)
        rates["numpy"][part] = _gflops(lambda a=a, b=b: a @ b, 2 * m * k * n, repeats)
    return rates


def floor_ms(rates: dict) -> float:
    """The least ms a training step can take: each multiply at the faster library's rate."""
    seconds = sum(
        2 * m * k * n * count / (1e9 * max(rates["torch"][part], rates["numpy"][part]))
        for part, ((m, k, n), count) in step_matmuls().items()
    )
    return 1e3 * seconds


def run(quick: bool = False) -> dict:
    """{threads: {"rates": ..., "floor_ms": ...}} for 1 and 2 threads."""
    results = {}
    for threads in (1, 2):
        # OpenBLAS reads its thread count once, when NumPy loads: a new process, started with it.
        rates = run_elsewhere("benchmarks.roofline:worker", {"threads": threads, "quick": quick},
                              threads=threads)
        results[threads] = {"rates": rates, "floor_ms": floor_ms(rates)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, quick="fewer repeats")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    print(f"machine: {machine()}")
    print(f"one training step: {step_flops() / 1e9:.2f} GFLOP of matrix multiplies")
    print(f"{'multiply (m, k, n)':<44} {'per step':>8}  GFLOP/s torch | numpy, 1 and 2 threads")
    for part, ((m, k, n), count) in step_matmuls().items():
        cells = "  ".join(
            f"{results[t]['rates']['torch'][part]:5.0f} | {results[t]['rates']['numpy'][part]:4.0f}"
            for t in (1, 2)
        )
        print(f"{part + f' ({m}, {k}, {n})':<44} {count:8d}  {cells}")
    for threads in (1, 2):
        print(f"floor at {threads} thread(s): {results[threads]['floor_ms']:.1f} ms per step")
    if args.json:
        figures = {"step_gflop": step_flops() / 1e9}
        for threads in (1, 2):
            figures[f"floor_ms_{threads}_threads"] = results[threads]["floor_ms"]
        print(json.dumps({key: round(value, 3) for key, value in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
