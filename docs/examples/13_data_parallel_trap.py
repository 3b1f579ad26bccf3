"""The data-parallel trap: each replica's own masked mean is not one process's loss.

A seq2seq model trains on the mean cross-entropy over the batch's real target
tokens (PAD positions are masked out).  Split the batch over N replicas and let
each replica take the masked mean of its own slice, as each framework's default
loss does (``F.cross_entropy(ignore_index=PAD)`` under DDP; Keras's masked loss
under ``MirroredStrategy``): the engine then averages the replicas' means, and a
replica holding 4 real tokens weighs as much as one holding 40.  The gradients
are no longer one process's, and nothing warns.

The fix: each replica sums its cross-entropy over its real tokens and divides by
the global real-token count G, all-reduced over the replicas, times whatever its
engine's gradient reduction undoes (DDP averages: times N; Keras's TensorFlow
optimizer sums: nothing).  Keras on JAX needs nothing: one jitted program sees
the whole sharded batch, so its sum and count are global by themselves (this
script writes the trap into the program, as a hand-written per-device loss
would, to show the same drift there).

This script takes one global batch whose first replica holds short answers and
whose second holds long ones, computes its gradients on 2 replicas with each
rule, and asserts, on PyTorch DDP and on Keras (on ``KERAS_BACKEND``'s backend,
TensorFlow unless set):

* the trap (each replica's own mean) moves the gradients by more than 10% of
  their largest value;
* the fix (sum over real tokens / G) stays within GRADIENT_RTOL (1e-4) of one
  process's gradients.

Run: python docs/examples/13_data_parallel_trap.py
(KERAS_BACKEND=jax for Keras on JAX).  docs/data-parallel.md has the whole story.

Shapes: B batch, S source length, T target length, N replicas.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# As in the test suite: fewer TensorFlow log lines, and oneDNN off for repeatable numbers.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from shared import BOS, EOS, PAD, Batch, Seq2SeqConfig
from shared.core.compare import GRADIENT_RTOL
from shared.core.runtime import configure_devices
from shared.layout import random_weights
from shared.text.data import random_ids
from shared.training.replicas import Job, real_tokens, split_batch

REPLICAS = 2
configure_devices(REPLICAS)  # JAX reads XLA_FLAGS when it first starts: before Keras loads

import keras_impl  # noqa: E402
import keras_impl.data_parallel  # noqa: E402
import torch_impl  # noqa: E402
import torch_impl.data_parallel  # noqa: E402

configure_devices(REPLICAS)  # TensorFlow: logical CPUs, before its first op

CONFIG = Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, embedding_dim=8, hidden_size=6)
S, T = 8, 9


def global_batch() -> Batch:
    """4 rows: replica 0's two answers have 1 token, replica 1's have 7."""
    rng = np.random.default_rng(0)
    answers = [1, 1, 7, 7]
    src = random_ids(rng, [5, 8, 3, 6], 13, width=S)                            # (B, S)
    ids = random_ids(rng, answers, 11, width=T - 1)                              # (B, T - 1)
    tgt_in = np.full((4, T), PAD, dtype=np.int64)                               # (B, T)
    tgt_out = np.full((4, T), PAD, dtype=np.int64)                              # (B, T)
    for row, n in enumerate(answers):  # the decoder reads BOS + answer, predicts answer + EOS
        tgt_in[row, : n + 1] = [BOS, *ids[row, :n]]
        tgt_out[row, : n + 1] = [*ids[row, :n], EOS]
    return Batch(src, tgt_in, tgt_out)


def relative_drift(got: dict, expected: dict) -> float:
    """The largest |difference| over all tensors, each relative to its largest gradient."""
    return max(float(np.abs(got[key] - grad).max()) / float(np.abs(grad).max())
               for key, grad in expected.items())


def main() -> None:
    batch = global_batch()
    weights = random_weights(CONFIG, seed=1)
    tokens = [real_tokens(part.tgt_out) for part in split_batch(batch, REPLICAS)]
    print(f"one global batch on {REPLICAS} replicas, real target tokens per replica: {tokens}")
    engines = {"torch DDP (gloo)": torch_impl,
               f"Keras on {keras_impl.BACKEND}": keras_impl}
    for name, module in engines.items():
        model = module.build_model(CONFIG)
        module.import_weights(model, weights)
        _, one_process = module.loss_and_gradients(model, *batch)
        fix, trap = module.data_parallel.run_jobs(
            [Job("gradients", CONFIG, weights, [[batch]], loss_rule=rule)
             for rule in ("global", "replica-mean")], REPLICAS)
        fixed, trapped = (relative_drift(run["gradients"], one_process) for run in (fix, trap))
        print(f"  {name}: gradients against one process, relative to the largest: "
              f"each replica's own mean {trapped:.2f}, sum / global count {fixed:.1e}")
        assert trapped > 0.1, f"{name}: the trap drifted only {trapped:.3g}"
        assert fixed < GRADIENT_RTOL, f"{name}: the fix drifted {fixed:.3g}"


if __name__ == "__main__":
    main()
