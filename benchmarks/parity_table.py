"""The worst difference per rung and per engine over the parity grid, as one table.

    python benchmarks/parity_table.py                 # Keras on KERAS_BACKEND, PyTorch, ONNX
    python benchmarks/parity_table.py --keras-backends tensorflow,jax,torch

The tests assert each rung within its tolerance; this prints how far inside it
each engine is, for the README and the issues' closing notes.  The grid and the
batch are the tests' own (tests/support.py: both cells, layers 1-3, uni- and
bidirectional, E == H and not, an empty and a length-1 source row).  Rungs,
each the largest |engine - reference| over the grid (the reference is NumPy in
float64):

    hand-off   every part (h, c or h) of every layer of encode(src)
    logits     decode(tgt_in, reference hand-off), real positions only
    final      the decoder's final state from the same call
    greedy     rows whose greedy tokens differ from the reference's (a count)
               (every figure is given per cell: LSTM and GRU)
    beam       rows whose beam-3 tokens differ from the reference's (a count)

Each Keras backend runs in its own process (Keras fixes its backend at import);
PyTorch and ONNX Runtime (onnx_impl) run in the first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

RUNGS = ("hand-off", "logits", "final", "greedy", "beam")


def measure(module) -> dict[str, dict[str, float]]:
    """Worst difference per cell and rung of one backend module over the grid."""
    from shared import PAD, reference
    from shared.layout import random_weights
    from shared.search import beam_search
    from tests.support import GRID, grid_config, sample_batch

    by_cell = {}
    for params in GRID:
        config = grid_config(*params)
        worst = by_cell.setdefault(config.cell, dict.fromkeys(RUNGS, 0.0))
        weights = random_weights(config, seed=7)
        src, tgt_in = sample_batch(seed=3)
        model = module.build_model(config, seed=0)
        module.import_weights(model, weights)
        state_ref = reference.encode(weights, config, src)
        state = module.encode(model, src)
        diffs = [float(np.abs(a - b).max()) for a, b in zip(state, state_ref, strict=True)]
        worst["hand-off"] = max(worst["hand-off"], *diffs)
        state_in = tuple(part.astype(np.float32) for part in state_ref)
        logits, final = module.decode(model, tgt_in, state_in)
        logits_ref, final_ref = reference.decode(weights, config, tgt_in, state_ref)
        real = tgt_in != PAD
        worst["logits"] = max(worst["logits"], float(np.abs(logits - logits_ref)[real].max()))
        worst["final"] = max(worst["final"], *(float(np.abs(a - b).max())
                                               for a, b in zip(final, final_ref, strict=True)))
        greedy_ref = reference.greedy_decode(weights, config, src, 8)
        worst["greedy"] += int((module.greedy_decode(model, src, 8) != greedy_ref).any(1).sum())

        def step(tokens, state, weights=weights, config=config):
            logits, state = reference.decode(weights, config, tokens[:, None], state)
            return logits[:, 0], state

        beam_ref = beam_search(step, state_ref, len(src), 3, 8)
        worst["beam"] += int((module.beam_decode(model, src, 3, 8) != beam_ref).any(1).sum())
    return by_cell


def run_here(with_torch: bool) -> dict[str, dict[str, float]]:
    import keras_impl

    results = {f"keras/{keras_impl.BACKEND}": measure(keras_impl)}
    if with_torch:
        import torch_impl

        results["torch"] = measure(torch_impl)
        import onnx_impl

        results["onnx"] = measure(onnx_impl)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keras-backends", help="comma-separated, each in its own process")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-torch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keras_backends is None:
        results = run_here(with_torch=not args.no_torch)
    else:
        results = {}
        for index, backend in enumerate(args.keras_backends.split(",")):
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
            command = [sys.executable, __file__, "--json"] + ([] if index == 0 else ["--no-torch"])
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            results.update(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'engine':<18}{'cell':<6}" + "".join(f"{rung:>10}" for rung in RUNGS))
    for engine, by_cell in results.items():
        for cell, worst in by_cell.items():
            cells = [f"{worst[r]:10.1e}" if r not in ("greedy", "beam") else f"{int(worst[r]):10d}"
                     for r in RUNGS]
            print(f"{engine:<18}{cell:<6}" + "".join(cells))
    print("hand-off, logits, final: max |diff| against the float64 reference over the grid;"
          " greedy, beam: rows that differ (of 30 per cell)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
