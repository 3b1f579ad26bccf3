"""Both frameworks in one process: does either slow the other, and which thread settings win?

    python benchmarks/threads.py [--quick] [--json]

``compare``, ``demo`` and the parity tests load TensorFlow and PyTorch in one
process.  Each framework keeps its own thread pools (PyTorch: one OpenMP pool of
``intra`` threads; TensorFlow: ``intra`` threads per op and ``inter`` ops at
once), and a pool that spins while the other framework works takes a core from
it.  TensorFlow fixes its pools and reads TF_ENABLE_ONEDNN_OPTS once, before its
first op, so every TensorFlow setting is measured in a fresh process (``worker``,
through ``shared.app.elsewhere``);
PyTorch's thread count can change at any time, so each worker times it at 1
and 2 threads.  In each worker, in this order:

    torch_alone_{n}      torch_impl's training step, n threads, TensorFlow not imported
    keras                keras_impl's training step (PyTorch imported, idle)
    torch_after_tf_{n}   torch_impl's step again, now that TensorFlow has run
    *_alternating_{n}    one step of each in turn, as the parity tests do
    *_busy_{n}           alternating while another process keeps one core busy
                         (the shared machine; only in the oneDNN-off workers)

The step is benchmarks/train_step.py's (B = 64, S = T = 20, V = 1000, E = 128,
H = 256), timed as a median after warm-up.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# `python benchmarks/x.py` puts benchmarks/ on sys.path; the imports need the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    benchmark_parser,
    interleaved_ms,
    machine,
    prepare_environment,
    set_threads,
)
from shared.app.elsewhere import run_elsewhere

# TensorFlow settings, one worker each: (intra, inter, oneDNN).
TF_SETTINGS = [
    (intra, inter, onednn)
    for onednn in ("off", "on")
    for intra, inter in ((1, 1), (2, 1), (1, 2), (2, 2))
]


def _median_ms(fn, repeats: int, warmup: int) -> float:
    return interleaved_ms({"step": fn}, repeats, 1, warmup, settle=0)["step"]


def _alternating_ms(torch_step, keras_step, pairs: int) -> tuple[float, float]:
    """Median ms of each step when the two run in turn, one step each."""
    ms = interleaved_ms({"keras": keras_step, "torch": torch_step}, pairs, 1, 0, settle=0)
    return ms["torch"], ms["keras"]


def worker(tf_intra: int, tf_inter: int, onednn: str, quick: bool) -> dict:
    """Measure one TensorFlow setting; run in a fresh process (see the module docstring)."""
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn == "on" else "0"
    prepare_environment()
    import torch

    from benchmarks.train_step import keras_impl_step, synthetic_batch, torch_impl_step

    repeats, warmup, pairs = (3, 1, 3) if quick else (10, 3, 8)
    batch = synthetic_batch()
    figures = {}
    torch_step = torch_impl_step(batch)
    for n in (1, 2):
        torch.set_num_threads(n)
        figures[f"torch_alone_{n}"] = _median_ms(torch_step, repeats, warmup)

    import tensorflow  # noqa: F401  (imported now, so that set_threads reaches it)

    set_threads(2, tf_intra, tf_inter)
    keras_step = keras_impl_step(batch)
    figures["keras"] = _median_ms(keras_step, repeats, warmup)
    for n in (1, 2):
        torch.set_num_threads(n)
        figures[f"torch_after_tf_{n}"] = _median_ms(torch_step, repeats, warmup)
        t_ms, k_ms = _alternating_ms(torch_step, keras_step, pairs)
        figures[f"torch_alternating_{n}"], figures[f"keras_alternating_{n}"] = t_ms, k_ms
    if onednn == "off":
        # A process that spins on one core: what another engineer's test run does.
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            for n in (1, 2):
                torch.set_num_threads(n)
                t_ms, k_ms = _alternating_ms(torch_step, keras_step, pairs)
                figures[f"torch_busy_{n}"], figures[f"keras_busy_{n}"] = t_ms, k_ms
        finally:
            busy.kill()
            busy.wait()
    return figures


def run(quick: bool = False) -> dict:
    """{(intra, inter, onednn): figures} for every TensorFlow setting, each in a fresh process."""
    return {
        (intra, inter, onednn): run_elsewhere("benchmarks.threads:worker", {
            "tf_intra": intra, "tf_inter": inter, "onednn": onednn, "quick": quick})
        for intra, inter, onednn in TF_SETTINGS
    }


def recommend(results: dict) -> dict:
    """The settings with the least time for one keras step plus one torch step, alternating."""
    best = min(
        (
            (figures[f"torch_alternating_{n}"] + figures[f"keras_alternating_{n}"], setting, n)
            for (setting, figures), n in itertools.product(results.items(), (1, 2))
        ),
        key=lambda item: item[0],
    )
    total_ms, (tf_intra, tf_inter, onednn), torch_intra = best
    return {"torch_intra": torch_intra, "tf_intra": tf_intra, "tf_inter": tf_inter,
            "onednn": onednn, "pair_ms": total_ms}


def report(results: dict) -> None:
    print("ms per training step (median).  tf: TensorFlow intra,inter,oneDNN; n: torch threads;")
    print("keras: keras_impl's step with torch idle; pairs: torch/keras, one step of each in turn")
    print(f"{'tf':<9} {'n':>2} {'torch alone':>11} {'keras':>6} {'torch after tf':>14} "
          f"{'pairs':>8} {'pairs, busy core':>16}")
    for (intra, inter, onednn), f in results.items():
        for n in (1, 2):
            pairs = f"{f[f'torch_alternating_{n}']:.0f}/{f[f'keras_alternating_{n}']:.0f}"
            busy = (f"{f[f'torch_busy_{n}']:.0f}/{f[f'keras_busy_{n}']:.0f}"
                    if f"torch_busy_{n}" in f else "-")
            first = n == 1  # the TensorFlow setting and its keras figure, once per setting
            label = f"{intra},{inter},{onednn}" if first else ""
            keras = f"{f['keras']:.0f}" if first else ""
            print(f"{label:<9} {n:>2} {f[f'torch_alone_{n}']:11.0f} {keras:>6} "
                  f"{f[f'torch_after_tf_{n}']:14.0f} {pairs:>8} {busy:>16}")


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, quick="fewer repeats")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    print(f"machine: {machine()}")
    report(results)
    best = recommend(results)
    print(f"fastest alternating pair: {best}")
    if args.json:
        flat = {
            f"tf{intra}{inter}_onednn_{onednn}_{key}_ms": round(value, 2)
            for (intra, inter, onednn), figures in results.items()
            for key, value in figures.items()
        }
        print(json.dumps({**flat, "recommended": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
