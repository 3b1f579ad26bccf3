"""How do I generate a whole answer from one thought vector (one-to-many)?

The seed thread's second answer said Keras has no ready way to predict a whole
sequence from one input.  The way is a loop: hand the encoder's (h, c) to the
decoder, feed it BOS, take the most likely token, feed that token back with
the (h, c) the decoder just returned, and stop at EOS.  Carrying (h, c) makes
each step cost one step: it gives the same numbers as re-reading the whole
prefix, which this example checks.

Shown with both backends: ``greedy_decode`` (the library's loop), a loop
written out by hand over the public ``encode``/``decode`` calls, and the NumPy
reference all give the same tokens.  Carrying h but restarting c at zero each
step gives different logits: the cell state is part of the memory.

Run: python docs/examples/05_one_to_many.py

Shapes: B batch, S source length, T generated length, V target vocabulary,
L layers, H decoder hidden.
"""

import os
import sys
from pathlib import Path

os.environ["KERAS_BACKEND"] = "tensorflow"
# As in the test suite: fewer TensorFlow log lines, and oneDNN off for repeatable numbers.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import keras_impl
import torch_impl
from shared import BOS, EOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import LOGITS_ATOL, assert_close
from shared.layout import random_weights

MAX_LEN = 8
CONFIG = Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=10, embedding_dim=6, hidden_size=8,
                       num_layers=2)
SRC = np.array([[4, 5, 6, 7, 8], [9, 10, PAD, PAD, PAD], [11, 4, 4, 6, PAD]])  # (B, S)


def generate(backend, model, src: np.ndarray, carry_c: bool = True):
    """Greedy decoding by hand: returns tokens (B, T) and each step's logits (B, T, V)."""
    h, c = backend.encode(model, src)                                      # (L, B, H) each
    batch = len(src)
    token = np.full(batch, BOS, dtype=np.int64)                            # (B,)
    tokens = np.full((batch, MAX_LEN), PAD, dtype=np.int64)                # (B, T)
    done = np.zeros(batch, dtype=bool)                                     # (B,)
    step_logits = []
    for t in range(MAX_LEN):
        if not carry_c:
            c = np.zeros_like(c)                                           # the mistake: h only
        # One step: a (B, 1) input and the (h, c) from the step before.
        logits, (h, c) = backend.decode(model, token[:, None], (h, c))     # (B, 1, V)
        step_logits.append(logits[:, 0])
        # A finished row is fed PAD: the decoder then keeps its state and we ignore it.
        token = np.where(done, PAD, logits[:, 0].argmax(axis=1))           # (B,)
        tokens[:, t] = token
        done |= token == EOS
        if done.all():
            break
    return tokens, np.stack(step_logits, axis=1)                           # (B, T), (B, t+1, V)


def main() -> None:
    weights = random_weights(CONFIG, seed=18, scale=1.0)
    # A trained decoder never predicts PAD or BOS; a random one is told so by its output bias.
    weights["decoder.output.b"][[PAD, BOS]] = -5.0
    expected = reference.greedy_decode(weights, CONFIG, SRC, MAX_LEN)      # (B, T)
    for backend in (keras_impl, torch_impl):
        model = backend.build_model(CONFIG)
        backend.import_weights(model, weights)

        tokens = backend.greedy_decode(model, SRC, MAX_LEN)                # (B, T)
        np.testing.assert_array_equal(tokens, expected, err_msg=f"{backend.NAME} greedy_decode")
        by_hand, step_logits = generate(backend, model, SRC)
        np.testing.assert_array_equal(by_hand, tokens, err_msg=f"{backend.NAME} loop by hand")
        print(f"{backend.NAME}: greedy_decode", tokens.shape, "== loop by hand == reference:",
              tokens.tolist())

        # Re-reading the whole prefix in one teacher-forced call gives the same logits.
        steps = step_logits.shape[1]
        tgt_in = np.concatenate([np.full((len(SRC), 1), BOS), tokens[:, : steps - 1]], axis=1)
        full = backend.forward(model, SRC, tgt_in)                         # (B, steps, V)
        assert_close(f"{backend.NAME} step-by-step vs whole-prefix logits", step_logits, full,
                     LOGITS_ATOL, mask=tgt_in != PAD)

        _, h_only = generate(backend, model, SRC, carry_c=False)
        common = min(steps, h_only.shape[1])
        lost = np.abs(h_only[:, :common] - step_logits[:, :common]).max()
        assert lost > 1e-2, "restarting c at zero must change the logits"
        print(f"{backend.NAME}: carrying h but not c moves the logits by up to {lost:.2f}")


if __name__ == "__main__":
    main()
