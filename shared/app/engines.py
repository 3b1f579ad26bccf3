"""One checkpoint on every engine: Keras on each of its backends, PyTorch, the NumPy reference.

``compare --keras-backends tensorflow,jax,torch`` lands here.  Keras fixes its
backend when it is first imported, so Keras on each backend runs in a worker
process of its own (``python -m shared.app.engines CHECKPOINT IN OUT``) that reads the
questions from a file and writes its outputs back; native PyTorch and the NumPy
reference run in this process.  Every engine computes the same three things from
the same canonical weights:

    the hand-off       encode(src), every part (h, c or h) of every layer
    the logits         decode(tgt_in, reference hand-off), teacher-forced on the
                       reference's greedy answers (so logits compare alone,
                       without the hand-off's rounding carried in; with attention
                       each engine reads its own memory, whose rounding, about
                       1e-6, is carried in)
    the greedy tokens  greedy_decode(src, max_len)

and ``engine_table`` compares every pair of engines with the tolerances of
``shared.core.compare``.  This module imports no framework itself.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder
hidden, V_tgt target vocabulary.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared import reference
from shared.checkpoint import load_checkpoint
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, agreement, max_abs_diff
from shared.core.tokens import PAD
from shared.ladder.parity import teacher_inputs

KERAS_BACKENDS = ("tensorflow", "jax", "torch")
# What each Keras backend needs installed besides Keras.
KERAS_NEEDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@dataclass(frozen=True)
class Outputs:
    """What one engine computed: the hand-off, the logits and the greedy tokens."""

    engine: str
    state: tuple[np.ndarray, ...]        # each (L, B, H_dec)
    logits: np.ndarray                   # (B, T, V_tgt)
    greedy: np.ndarray                   # int64 (B, max_len)


def run_engine(module, model, src, tgt_in, state_in, max_len: int, engine: str) -> Outputs:
    """The three outputs of one backend ``module`` (keras_impl, torch_impl, ...) for ``model``."""
    state, memory = module.encode(model, src, return_memory=True)         # each (L, B, H_dec)
    logits, _ = module.decode(model, tgt_in, state_in, memory)              # (B, T, V_tgt)
    return Outputs(engine, tuple(state), logits, module.greedy_decode(model, src, max_len))


def reference_outputs(checkpoint, src, max_len: int) -> tuple[Outputs, np.ndarray]:
    """The NumPy reference's outputs (float64) and the teacher-forced input built from them."""
    weights, config = checkpoint.weights, checkpoint.config
    state, memory = reference.encode(weights, config, src, return_memory=True)
    greedy = reference.greedy_decode(weights, config, src, max_len)         # (B, max_len)
    tgt_in = teacher_inputs(greedy)                                         # (B, T)
    logits, _ = reference.decode(weights, config, tgt_in, state, memory)    # (B, T, V_tgt)
    return Outputs("reference", tuple(state), logits, greedy), tgt_in


def keras_outputs(backend: str, checkpoint_path: str, src, tgt_in, state_in,
                  max_len: int) -> Outputs:
    """Keras on ``backend``, in a worker process; raises RuntimeError with its error line."""
    with tempfile.TemporaryDirectory(prefix="seq2seq-engines-") as folder:
        inputs, outputs = Path(folder) / "in.npz", Path(folder) / "out.npz"
        np.savez(inputs, src=src, tgt_in=tgt_in, max_len=max_len,
                 **{f"state{j}": part.astype(np.float32) for j, part in enumerate(state_in)})
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(
            [sys.executable, "-m", "shared.app.engines", str(checkpoint_path), str(inputs),
             str(outputs)], env=env, capture_output=True, text=True,
        )
        if done.returncode != 0 or not outputs.exists():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise RuntimeError(f"Keras on {backend} failed: {lines[-1] if lines else 'no output'}")
        with np.load(outputs) as saved:
            parts = sorted(k for k in saved.files if k.startswith("state"))
            return Outputs(f"keras/{backend}", tuple(saved[k] for k in parts), saved["logits"],
                           saved["greedy"])


def missing_for(backend: str) -> str | None:
    """Why Keras on ``backend`` cannot run here (the missing package), or None."""
    for module in ("keras", KERAS_NEEDS[backend]):
        if importlib.util.find_spec(module) is None:
            return module
    return None


@dataclass(frozen=True)
class PairRow:
    """Two engines compared: the largest differences and the token agreement."""

    first: str
    second: str
    handoff: float
    logits: float
    greedy_agreement: float

    @property
    def ok(self) -> bool:
        return (self.handoff <= STATE_ATOL and self.logits <= LOGITS_ATOL
                and self.greedy_agreement == 1.0)


def engine_table(outputs: list[Outputs], tgt_in: np.ndarray) -> list[PairRow]:
    """Every pair of engines (the reference first), compared on all three outputs."""
    real = tgt_in != PAD                                                    # (B, T)
    rows = []
    for a, b in itertools.combinations(outputs, 2):
        handoff = max(max_abs_diff(pa, pb)[0] for pa, pb in zip(a.state, b.state, strict=True))
        logits = max_abs_diff(a.logits, b.logits, mask=real)[0]
        rows.append(PairRow(a.engine, b.engine, handoff, logits, agreement(a.greedy, b.greedy)))
    return rows


def format_engine_table(rows: list[PairRow]) -> str:
    """The pairs as aligned text, tolerances in the header."""
    header = ("engines", f"hand-off (atol {STATE_ATOL:g})", f"logits (atol {LOGITS_ATOL:g})",
              "greedy equal", "result")
    body = [(f"{r.first} vs {r.second}", f"{r.handoff:.1e}", f"{r.logits:.1e}",
             f"{r.greedy_agreement:.0%}", "ok" if r.ok else "FAIL") for r in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in [header, tuple("-" * w for w in widths), *body]]
    return "\n".join(lines)


def _worker(checkpoint_path: str, inputs: str, outputs: str) -> None:
    """Inside a worker: load keras_impl on this process's backend and write its outputs."""
    import keras_impl
    from shared.core.runtime import configure_threads

    configure_threads(intra_op=os.cpu_count() or 1, inter_op=1)
    checkpoint = load_checkpoint(checkpoint_path)
    model = keras_impl.build_model(checkpoint.config)
    keras_impl.import_weights(model, checkpoint.weights)
    with np.load(inputs) as given:
        parts = sorted(k for k in given.files if k.startswith("state"))
        result = run_engine(keras_impl, model, given["src"], given["tgt_in"],
                            tuple(given[k] for k in parts), int(given["max_len"]), "keras")
    np.savez(outputs, logits=result.logits, greedy=result.greedy,
             **{f"state{j}": part for j, part in enumerate(result.state)})


if __name__ == "__main__":
    _worker(*sys.argv[1:4])
