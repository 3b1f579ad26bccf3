"""The seed question: does the encoder hand the decoder only h, or h AND c?

Both.  An LSTM's state is the pair (h, c): c is the cell state, the memory the
forget gate keeps from step to step, and h = o * tanh(c) is only the part of it
the output gate shows.  h cannot give c back (o is unknown and tanh squashes),
so a decoder started from h alone starts with its memory wiped.

This example proves it on our seq2seq model with random weights:

1. decoding from the encoder's (h, c) gives the NumPy reference's logits;
2. decoding from (h, zeros) or (zeros, c) gives different logits;
3. (c, h) in TF1's order, given where (h, c) is expected, runs and is wrong;
4. the hand-off crosses frameworks: ``keras_impl.encode`` -> ``torch_impl.decode``
   (and back) gives the reference's logits.

Run: python docs/examples/06_handoff_h_and_c.py

Shapes: B batch, S source length, T target length, V target vocabulary,
L layers, H_dec decoder hidden.
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
from shared import BOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close, compare, format_table
from shared.layout import random_weights

# Two layers and a bidirectional encoder: each layer hands over its own (h, c),
# forward and backward side by side, so the decoder is 2H wide.
CONFIG = Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, embedding_dim=5, hidden_size=4,
                       num_layers=2, bidirectional=True)
SRC = np.array([[4, 5, 6, 7, 8, 9], [10, 11, PAD, PAD, PAD, PAD], [12, 4, 6, 6, PAD, PAD]])
TGT_IN = np.array([[BOS, 5, 6, 7], [BOS, 8, PAD, PAD], [BOS, 9, 10, PAD]])  # (B, T)


def main() -> None:
    # Weights in [-1, 1]: big enough that a wrong start shows in the logits clearly.
    weights = random_weights(CONFIG, seed=11, scale=1.0)
    models = {}
    for backend in (keras_impl, torch_impl):
        model = backend.build_model(CONFIG)
        backend.import_weights(model, weights)
        models[backend.NAME] = (backend, model)
    expected = reference.forward(weights, CONFIG, SRC, TGT_IN)             # (B, T, V)
    real = TGT_IN != PAD                                                   # (B, T)

    backend, model = models["keras"]
    h, c = backend.encode(model, SRC)                                      # (L, B, H_dec) each
    print("hand-off: h", h.shape, "c", c.shape, "= (layers, batch, D*H)")
    h_ref, c_ref = reference.encode(weights, CONFIG, SRC)
    assert_close("hand-off h", h, h_ref, STATE_ATOL)
    assert_close("hand-off c", c, c_ref, STATE_ATOL)
    # h = o * tanh(c) is squashed into (-1, 1); c is not: it holds more than h shows.
    print(f"max |h| = {np.abs(h).max():.2f}, max |c| = {np.abs(c).max():.2f}")

    starts = {
        "(h, c): the hand-off": (h, c),
        "(h, 0): h only": (h, np.zeros_like(c)),
        "(0, c): c only": (np.zeros_like(h), c),
        "(c, h): TF1's order": (c, h),
    }
    results = [compare(f"logits from {name}", backend.decode(model, TGT_IN, state)[0], expected,
                       LOGITS_ATOL, mask=real) for name, state in starts.items()]
    print("decoder logits against the reference (a FAIL row is a wrong start, caught):")
    print(format_table(results))
    assert results[0].ok, str(results[0])
    for wrong in results[1:]:
        assert wrong.max_abs_diff > 1e-2, f"{wrong.name} must differ from the reference"

    # Across frameworks: the hand-off is plain NumPy (h, c), so either decoder takes it.
    for encoder, decoder in (("keras", "torch"), ("torch", "keras")):
        enc_backend, enc_model = models[encoder]
        dec_backend, dec_model = models[decoder]
        handoff = enc_backend.encode(enc_model, SRC)                       # (h, c)
        logits, _ = dec_backend.decode(dec_model, TGT_IN, handoff)         # (B, T, V)
        result = assert_close(f"{encoder}_impl.encode -> {decoder}_impl.decode logits", logits,
                              expected, LOGITS_ATOL, mask=real)
        print(result)


if __name__ == "__main__":
    main()
