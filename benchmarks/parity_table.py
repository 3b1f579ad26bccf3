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
    memory     the encoder outputs an attending decoder reads (B, S, H_dec)
    attention  the teacher-forced attention weights (B, T, S), real positions only
    logits     decode(tgt_in, reference hand-off), real positions only
    final      the decoder's final state from the same call
    greedy     rows whose greedy tokens differ from the reference's (a count)
    beam       rows whose beam-3 tokens differ from the reference's (a count)

Every figure is given per family: the six LSTM and six GRU models without
attention, and the two models of each attention kind (one LSTM, one GRU).

Each Keras backend runs in its own process (Keras fixes its backend at import);
PyTorch and ONNX Runtime (onnx_impl) run in the first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import per_keras_backend

RUNGS = ("hand-off", "memory", "attention", "logits", "final", "greedy", "beam")


def family(config) -> str:
    """The row a grid model counts in: its cell without attention, its attention kind with."""
    return config.attention if config.has_attention else config.cell


def measure(module) -> dict[str, dict[str, float]]:
    """Worst difference per family (lstm, gru, luong, bahdanau) and rung of one backend."""
    from shared import PAD, reference
    from tests.support import GRID, grid_config, grid_weights, reference_beam, sample_batch

    by_family = {}
    for params in GRID:
        config = grid_config(*params)
        attends = config.has_attention
        worst = by_family.setdefault(family(config), dict.fromkeys(RUNGS, 0.0))
        weights = grid_weights(config, seed=7)
        src, tgt_in = sample_batch(seed=3)
        real = tgt_in != PAD                                                # (B, T)
        model = module.build_model(config, seed=0)
        module.import_weights(model, weights)
        state_ref, memory_ref = reference.encode(weights, config, src, return_memory=True)
        if attends:
            state, memory = module.encode(model, src, return_memory=True)
            worst["memory"] = max(worst["memory"],
                                  float(np.abs(memory.outputs - memory_ref.outputs).max()))
            attention = module.attention_weights(model, src, tgt_in)        # (B, T, S)
            attention_ref = reference.attention_weights(weights, config, src, tgt_in)
            worst["attention"] = max(worst["attention"],
                                     float(np.abs(attention - attention_ref)[real].max()))
            extra = (memory,)
        else:
            state, extra = module.encode(model, src), ()
        diffs = [float(np.abs(a - b).max()) for a, b in zip(state, state_ref, strict=True)]
        worst["hand-off"] = max(worst["hand-off"], *diffs)
        # The reference's hand-off goes in, so that the logits compare alone (with
        # attention, each engine reads its own memory: its rounding is carried in).
        state_in = tuple(part.astype(np.float32) for part in state_ref)
        logits, final = module.decode(model, tgt_in, state_in, *extra)
        logits_ref, final_ref = reference.decode(weights, config, tgt_in, state_ref, memory_ref)
        worst["logits"] = max(worst["logits"], float(np.abs(logits - logits_ref)[real].max()))
        worst["final"] = max(worst["final"], *(float(np.abs(a - b).max())
                                               for a, b in zip(final, final_ref, strict=True)))
        greedy_ref = reference.greedy_decode(weights, config, src, 8)
        worst["greedy"] += int((module.greedy_decode(model, src, 8) != greedy_ref).any(1).sum())
        beam_ref = reference_beam(weights, config, src, 3, 8)
        worst["beam"] += int((module.beam_decode(model, src, 3, 8) != beam_ref).any(1).sum())
    for rung in ("memory", "attention"):
        for name in ("lstm", "gru"):
            if name in by_family:
                by_family[name][rung] = None                                # no attention
    return by_family


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
        results = per_keras_backend(__file__, args.keras_backends, first_only=("--no-torch",))
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'engine':<18}{'model':<10}" + "".join(f"{rung:>10}" for rung in RUNGS))
    for engine, by_cell in results.items():
        for cell, worst in by_cell.items():
            cells = [f"{'-':>10}" if worst[r] is None
                     else f"{int(worst[r]):10d}" if r in ("greedy", "beam")
                     else f"{worst[r]:10.1e}" for r in RUNGS]
            print(f"{engine:<18}{cell:<10}" + "".join(cells))
    print("hand-off, memory, attention, logits, final: max |diff| against the float64 reference"
          " over the grid; greedy, beam: rows that differ (of 30 per cell, 10 per attention"
          " kind)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
