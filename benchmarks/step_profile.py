"""Where one training step spends its time, on the Keras backend in use.

    KERAS_BACKEND=tensorflow|jax|torch python benchmarks/step_profile.py [--steps 3] [--json]

Profiles benchmarks/train_step.py's ``keras_impl`` and ``keras_bare`` steps with
the backend's own profiler (tf.profiler, jax.profiler, torch.profiler) and,
for reference, ``torch_bare``'s with torch.profiler, and sorts every kernel the
profiler saw into one of two kinds:

    matmul   TensorFlow MatMul ops; XLA ``dot`` thunks and ``ynn_fusion`` thunks
             (dots that XLA hands to YNNPACK: their HLO is a dot_general);
             PyTorch ``aten::mm``/``addmm``/``bmm`` and the fused oneDNN LSTM
             (``mkldnn_rnn_layer``, forward and backward: gates included).
    other    every other kernel: gate nonlinearities, masks, copies, the loss, Adam.

What is left of the step's wall time ran in no kernel: Python (PyTorch's eager
loop), the graph executor's or the thunk executor's dispatch.  The process pins
itself to one core and runs every framework on one thread (as
``keras_backends.py --threads one``), so that kernels never overlap and their
sum is a share of the wall time.  Figures are medians over ``--steps`` profiled
steps, after warm-up.

TensorFlow's trace is read with ``jax.profiler.ProfileData`` (both write the
same XSpace format; jax is installed beside Keras here).
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, load_average, prepare_environment

TF_MATMULS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "_MklMatMul",
              "_FusedMatMul", "_MklFusedMatMul", "_MklNativeFusedMatMul")
XLA_MATMULS = ("dot", "ynn_fusion")
# Thunks that only hold or wait for other thunks (a while loop holds its body's).
XLA_HOLDERS = ("ThunkExecutor", "ThreadpoolListener", "while", "conditional", "end: ", "Wait")
TORCH_MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::mkldnn_rnn_layer",
                 "aten::mkldnn_rnn_layer_backward")


def _xspace_kernels(folder: str, kernel) -> list[tuple[str, float]]:
    """(kind, ms) of every kernel event in the one trace under ``folder``."""
    from jax.profiler import ProfileData

    (path,) = glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)
    found = []
    for plane in ProfileData.from_file(path).planes:
        for line in plane.lines:
            if line.name == "python":      # the calling thread: it waits, it runs no kernel
                continue
            for event in line.events:
                kind = kernel(event.name)
                if kind is not None:
                    found.append((kind, event.duration_ns / 1e6))
    return found


def _tf_kernel(name: str) -> str | None:
    # Op events read "scope/name:OpType"; the executor's own read "ExecutorState::Process".
    if ":" not in name or "::" in name:
        return None
    return "matmul" if name.rsplit(":", 1)[1] in TF_MATMULS else "other"


def _xla_kernel(name: str) -> str | None:
    if name.startswith(XLA_HOLDERS):
        return None
    return "matmul" if name.startswith(XLA_MATMULS) else "other"


def profile_xspace(step, start, stop, kernel) -> dict:
    folder = tempfile.mkdtemp(prefix="step-profile-")
    start(folder)
    tic = time.perf_counter()
    step()
    wall = 1e3 * (time.perf_counter() - tic)
    stop()
    return summary(wall, _xspace_kernels(folder, kernel))


def profile_torch(step) -> dict:
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        tic = time.perf_counter()
        step()
        wall = 1e3 * (time.perf_counter() - tic)
    kernels = []
    for event in prof.key_averages():
        if event.key.startswith("aten::"):           # autograd and optimizer frames hold ops
            kind = "matmul" if event.key in TORCH_MATMULS else "other"
            kernels += [(kind, event.self_cpu_time_total / 1e3 / event.count)] * event.count
    return summary(wall, kernels)


def summary(wall: float, kernels: list[tuple[str, float]]) -> dict:
    matmul = sum(ms for kind, ms in kernels if kind == "matmul")
    other = sum(ms for kind, ms in kernels if kind == "other")
    return {"wall_ms": wall, "kernels": len(kernels),
            "matmuls": sum(kind == "matmul" for kind, _ in kernels),
            "matmul_ms": matmul, "other_ms": other, "no_kernel_ms": wall - matmul - other}


def profiler_for(backend: str):
    """A function(step) -> summary, with the profiler of ``backend``."""
    if backend == "tensorflow":
        import tensorflow as tf

        return lambda step: profile_xspace(step, tf.profiler.experimental.start,
                                           tf.profiler.experimental.stop, _tf_kernel)
    if backend == "jax":
        import jax

        return lambda step: profile_xspace(step, jax.profiler.start_trace,
                                           jax.profiler.stop_trace, _xla_kernel)
    return profile_torch


def median_summary(profile, step, steps: int) -> dict:
    """The median profile of ``steps`` steps, and the median step time without a profiler."""
    for _ in range(3):                      # warm-up: tracing, compiling, allocating
        step()
    plain = []
    for _ in range(steps):
        tic = time.perf_counter()
        step()
        plain.append(1e3 * (time.perf_counter() - tic))
    runs = [profile(step) for _ in range(steps)]
    return {"plain_ms": statistics.median(plain),
            **{key: statistics.median(run[key] for run in runs) for key in runs[0]}}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (default 3)")
    args = parser.parse_args(argv)

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before any pool is sized
    prepare_environment()
    import keras_impl
    import torch_impl  # noqa: F401
    from benchmarks.train_step import (
        keras_bare_step,
        keras_impl_step,
        synthetic_batch,
        torch_bare_step,
    )
    from shared.core.runtime import configure_threads

    configure_threads(1, 1)
    backend = keras_impl.BACKEND
    batch = synthetic_batch()
    load = load_average()
    rows = {
        f"keras_impl ({backend})": median_summary(profiler_for(backend),
                                                  keras_impl_step(batch), args.steps),
        f"keras_bare ({backend})": median_summary(profiler_for(backend),
                                                  keras_bare_step(batch), args.steps),
        "torch_bare": median_summary(profile_torch, torch_bare_step(batch), args.steps),
    }
    print(f"keras backend {backend}, one core, one thread; load_1min before {load:.2f}")
    # The profilers add their own cost per kernel: the kinds split the profiled wall time.
    print(f"{'step':<24}{'ms':>7}{'profiled':>10}{'kernels':>9}{'matmuls':>9}"
          f"{'matmul ms':>11}{'other ms':>10}{'no kernel ms':>14}")
    for name, row in rows.items():
        print(f"{name:<24}{row['plain_ms']:7.1f}{row['wall_ms']:10.1f}{row['kernels']:9.0f}"
              f"{row['matmuls']:9.0f}{row['matmul_ms']:11.1f}{row['other_ms']:10.1f}"
              f"{row['no_kernel_ms']:14.1f}")
    if args.json:
        print(json.dumps({"backend": backend, "load_1min": load, **rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
