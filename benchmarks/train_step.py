"""Milliseconds per training step: our two implementations against the bare frameworks.

    [KERAS_BACKEND=tensorflow|jax|torch] python benchmarks/train_step.py [--quick] [--json]
           [--variants] [--ragged] [--torch-threads N] [--tf-threads INTRA,INTER]
           [--onednn on|off]

One step is forward, masked cross-entropy, backward and an Adam update on one
batch (B = 64, S = T = 20, V = 1000, E = 128, H = 256, one layer), ending when the
loss is back in Python.  Four contenders, timed side by side in one process, in
interleaved rounds after warm-up.  The two Keras contenders run on the backend
that ``KERAS_BACKEND`` names (TensorFlow when unset); benchmarks/keras_backends.py
runs this script once per backend and prints the backends side by side.

    torch_impl  the body of ``torch_impl.train``'s loop: input checks, zero_grad,
                ``model(src, tgt_in)`` (packed encoder and decoder),
                ``masked_cross_entropy``, backward, Adam step, ``loss.item()``.
    keras_impl  the body of ``keras_impl.train``'s loop: input checks, one call of
                the compiled step that ``train`` uses (``keras_impl.per_backend.TrainStep``:
                model, masked loss, gradients, Adam; one tf.function on TensorFlow,
                one jax.jit on JAX, eager on PyTorch), ``float(loss)``.
    torch_bare  what a PyTorch user writes: nn.Embedding + nn.LSTM, whose final
                (h, c) is handed to nn.Embedding + nn.LSTM + nn.Linear; no packing;
                ``F.cross_entropy(ignore_index=PAD)``; torch.optim.Adam on all weights.
    keras_bare  what a Keras user writes: a functional model, Embedding(mask_zero=True)
                + LSTM(return_state=True) -> Embedding(mask_zero=True) +
                LSTM(initial_state=[h, c], mask=...) + Dense (the decoder's mask
                passed explicitly: initial_state= drops mask_zero's); ``model.compile(Adam,
                SparseCategoricalCrossentropy(from_logits=True))``; ``train_on_batch``.
                ``jit_compile`` stays at Keras's "auto": a tf.function without XLA on
                a TensorFlow CPU, jax.jit on JAX (``False`` there would run eagerly,
                op by op), eager on PyTorch.

Why the loop body and not ``train(model, [batch] * N)``: ``train`` compiles a new
step on every call (a tf.function trace or a jax.jit compile, seconds), so
dividing its time by N would weigh compiling, not steps; the loop body is
everything ``train`` does per step except the progress bar.

Every row is 20 real tokens, so all four do the same arithmetic and a difference
is overhead (masking, packing, checks).  ``--ragged`` gives rows of 10 to 20 tokens
instead, where packing lets PyTorch skip the padded steps.  ``--variants`` adds
the experiments of docs/performance.md: the Keras step under XLA (on TensorFlow
only: JAX always compiles with XLA, and PyTorch has none), Keras without the
mask, PyTorch with packing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# `python benchmarks/x.py` puts benchmarks/ on sys.path; the imports need the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import (
    EMBEDDING,
    HIDDEN,
    VOCAB,
    add_thread_arguments,
    benchmark_parser,
    full_ids,
    interleaved_ms,
    load_average,
    machine,
    print_json_line,
    start_frameworks,
)
from shared import BOS, EOS, PAD, Seq2SeqConfig

# The frameworks are imported inside the functions that use them: TensorFlow
# reads TF_ENABLE_ONEDNN_OPTS when it loads, and start_frameworks sets it from --onednn first.

BATCH, LENGTH = 64, 20


def synthetic_batch(seed: int = 0, ragged: bool = False, length: int = LENGTH, batch: int = BATCH):
    """(src, tgt_in, tgt_out), int64 (B, S) and (B, T), S = T = ``length``.

    Decoder input and target are the same sentence shifted by one step, as in
    training: tgt_in = BOS + answer, tgt_out = answer + EOS.
    """
    rng = np.random.default_rng(seed)
    src = full_ids(rng, batch, length, VOCAB)                              # (B, S)
    answer = full_ids(rng, batch, length - 1, VOCAB)                       # (B, T-1)
    tgt_in = np.concatenate([np.full((batch, 1), BOS), answer], axis=1)      # (B, T)
    tgt_out = np.concatenate([answer, np.full((batch, 1), EOS)], axis=1)     # (B, T)
    if ragged:  # cut each row to 10..length real tokens, PAD after
        for row in range(batch):
            src[row, rng.integers(length // 2, length + 1):] = PAD
            n = rng.integers(length // 2, length + 1)
            tgt_in[row, n:] = PAD
            tgt_out[row, n - 1] = EOS
            tgt_out[row, n:] = PAD
    return src, tgt_in, tgt_out


def config() -> Seq2SeqConfig:
    return Seq2SeqConfig(VOCAB, VOCAB, EMBEDDING, HIDDEN)


def torch_impl_step(batch):
    import torch_impl
    from shared.checkpoint import optimizer_settings
    from torch_impl.optimizer import build_optimizer
    from torch_impl.train import _tensors, masked_cross_entropy

    model = torch_impl.build_model(config())
    opt = build_optimizer(model, optimizer_settings("adam", 1e-3, None, None))
    model.train()

    def step():
        src, tgt_in, tgt_out = _tensors(model, *batch)
        opt.zero_grad(set_to_none=True)
        loss = masked_cross_entropy(model(src, tgt_in), tgt_out)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def keras_impl_step(batch, jit_compile: bool = False):
    from keras import ops

    import keras_impl
    from keras_impl import per_backend
    from keras_impl.optimizer import build_optimizer
    from keras_impl.train import _arrays, _loss_of
    from shared.checkpoint import optimizer_settings

    model = keras_impl.build_model(config())
    ids = ((None, None), "int64")
    adam = build_optimizer(model, optimizer_settings("adam", 1e-3, None, None))
    compiled = per_backend.TrainStep(model, adam, _loss_of,
                                     signature=[ids, ids, ids])
    if jit_compile:  # the very same Python step, compiled by XLA instead (TensorFlow only)
        import tensorflow as tf

        assert per_backend.BACKEND == "tensorflow", "--variants' XLA step is TensorFlow's"
        traced = compiled._step
        compiled._step = tf.function(
            traced.python_function, input_signature=traced.input_signature, jit_compile=True
        )

    def step():
        return compiled(*(ops.convert_to_tensor(a) for a in _arrays(model, *batch)))

    return step


def torch_bare_step(batch, packed: bool = False):
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc_emb = nn.Embedding(VOCAB, EMBEDDING)
            self.enc = nn.LSTM(EMBEDDING, HIDDEN, batch_first=True)
            self.dec_emb = nn.Embedding(VOCAB, EMBEDDING)
            self.dec = nn.LSTM(EMBEDDING, HIDDEN, batch_first=True)
            self.out = nn.Linear(HIDDEN, VOCAB)

        def forward(self, src, tgt_in):
            x, y = self.enc_emb(src), self.dec_emb(tgt_in)                  # (B, S, E), (B, T, E)
            if not packed:
                _, state = self.enc(x)                                      # each (1, B, H)
                out, _ = self.dec(y, state)                                 # (B, T, H)
                return self.out(out)                                        # (B, T, V)
            src_len, tgt_len = (src != PAD).sum(1).cpu(), (tgt_in != PAD).sum(1).cpu()
            _, state = self.enc(pack_padded_sequence(x, src_len, True, enforce_sorted=False))
            out = self.dec(pack_padded_sequence(y, tgt_len, True, enforce_sorted=False), state)[0]
            out = pad_packed_sequence(out, True, total_length=tgt_in.shape[1])[0]  # (B, T, H)
            return self.out(out)                                            # (B, T, V)

    model = Bare()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    src, tgt_in, tgt_out = (torch.from_numpy(a) for a in batch)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(src, tgt_in)                                         # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt_out.reshape(-1), ignore_index=PAD)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def keras_bare_step(batch, mask: bool = True, jit_compile: bool | str = "auto"):
    import keras
    from keras import layers

    src_in = keras.Input((None,), dtype="int64", name="src")
    tgt_in = keras.Input((None,), dtype="int64", name="tgt_in")
    x = layers.Embedding(VOCAB, EMBEDDING, mask_zero=mask)(src_in)         # (B, S, E)
    _, h, c = layers.LSTM(HIDDEN, return_state=True)(x)                    # each (B, H)
    embedding = layers.Embedding(VOCAB, EMBEDDING, mask_zero=mask)
    y = embedding(tgt_in)                                                  # (B, T, E)
    # With initial_state= Keras drops mask_zero's mask (docs/examples/09): pass it.
    y_mask = embedding.compute_mask(tgt_in) if mask else None              # (B, T) or None
    y = layers.LSTM(HIDDEN, return_sequences=True)(y, initial_state=[h, c], mask=y_mask)
    logits = layers.Dense(VOCAB)(y)                                        # (B, T, V)
    model = keras.Model([src_in, tgt_in], logits)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    src, tgt_in_ids, tgt_out = batch

    def step():
        return model.train_on_batch([src, tgt_in_ids], tgt_out)

    return step


def contenders(batch, variants: bool) -> dict:
    import keras

    steps = {
        "torch_impl": torch_impl_step(batch),
        "keras_impl": keras_impl_step(batch),
        "torch_bare": torch_bare_step(batch),
        "keras_bare": keras_bare_step(batch),
    }
    if variants:
        if keras.backend.backend() == "tensorflow":
            steps["keras_impl_xla"] = keras_impl_step(batch, jit_compile=True)
            steps["keras_bare_xla"] = keras_bare_step(batch, jit_compile=True)
        steps["keras_bare_nomask"] = keras_bare_step(batch, mask=False)
        steps["torch_bare_packed"] = torch_bare_step(batch, packed=True)
    return steps


def run(quick: bool = False, ragged: bool = False, variants: bool = False) -> dict:
    """Median ms per step of every contender (frameworks imported, threads already set)."""
    batch = synthetic_batch(ragged=ragged)
    rounds, steps, warmup = (6, 3, 2) if quick else (10, 3, 3)
    return interleaved_ms(contenders(batch, variants), rounds, steps, warmup)


def report(ms: dict, ragged: bool = False) -> None:
    from benchmarks.roofline import step_flops

    # FLOPs of the dense step: with --ragged, packed PyTorch does less than this.
    flops = step_flops(B=BATCH, S=LENGTH, T=LENGTH)
    print(f"{'contender':<20} {'ms/step':>8} {'GFLOP/s':>8}")
    for name, value in ms.items():
        print(f"{name:<20} {value:8.1f} {flops / value / 1e6:8.0f}")
    # On ragged rows bare PyTorch runs over PAD and hands over the state after it: another model.
    torch_note = "(bare runs over PAD: not comparable)" if ragged else "(target <= 1.10)"
    print(f"torch_impl / torch_bare  {ms['torch_impl'] / ms['torch_bare']:.2f}  {torch_note}")
    print(f"keras_impl / keras_bare  {ms['keras_impl'] / ms['keras_bare']:.2f}  (target <= 1.10)")
    print(f"keras_impl / torch_impl  {ms['keras_impl'] / ms['torch_impl']:.2f}")
    print(f"keras_bare / torch_bare  {ms['keras_bare'] / ms['torch_bare']:.2f}")


def arguments() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, quick="fewer repeats (under a minute)")
    parser.add_argument("--ragged", action="store_true", help="rows of 10..20 real tokens")
    parser.add_argument("--variants", action="store_true", help="time the experiments too")
    add_thread_arguments(parser)
    return parser


def measure(argv: list[str]) -> dict:
    """The figures that ``train_step.py ARGV --json`` ends with: {"<contender>_ms": median ms}.

    For benchmarks/keras_backends.py, which calls it in a fresh process per Keras
    backend (``shared.app.elsewhere``): TensorFlow takes its thread settings only
    before its first op, so a process measures once.
    """
    args = arguments().parse_args(argv)
    start_frameworks(args)
    ms = run(quick=args.quick, ragged=args.ragged, variants=args.variants)
    return {f"{name}_ms": value for name, value in ms.items()}


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    threads = start_frameworks(args)
    import keras_impl  # loaded by start_frameworks; here for its BACKEND

    load_before = load_average()
    ms = run(quick=args.quick, ragged=args.ragged, variants=args.variants)
    print(f"machine: {machine()}, load_1min before the run {load_before:.2f}")
    print("threads: torch {}, tensorflow intra {} inter {}".format(*threads))
    print(f"keras backend: {keras_impl.BACKEND}")
    if args.variants and keras_impl.BACKEND != "tensorflow":
        print(f"--variants: no XLA rows on {keras_impl.BACKEND} (they are TensorFlow's "
              "jit_compile=True; JAX always compiles with XLA, PyTorch has no XLA)")
    report(ms, ragged=args.ragged)
    if args.json:
        print_json_line({f"{name}_ms": value for name, value in ms.items()})
    return 0

if __name__ == "__main__":
    sys.exit(main())
