"""How do I encode a long source in pieces, carrying the state, as a device reads a stream?

A unidirectional encoder reads left to right: its state after a chunk is all it
needs to go on.  Three ways to do that with the same weights, which must agree:

1. Keras's own: a ``stateful=True`` copy of the encoder keeps the state in its
   layers between calls, and ``reset_state()`` starts a new source.  Stateful
   layers need a fixed batch (``batch_shape``); the PAD mask rides along from
   ``Embedding(mask_zero=True)`` because each layer is called with one tensor.
2. PyTorch's own: the encoder's ``nn.LSTM`` called chunk by chunk on packed
   chunks, each call given the (h, c) the last one returned.  A row with no real
   token in a chunk must keep its state: packing refuses length 0, so a packed
   run clamps it to 1 and takes one PAD step, which moves h.
3. Ours, on every engine: ``encode(model, chunk, initial_state=state)``.

All three end where ``encode(model, whole_source)`` does.  Forgetting
``reset_state()`` starts the next source from the last one's state.

Run: python docs/examples/13_streaming_state.py

Shapes: B batch, S source length, L layers, H hidden.
"""

import os
import sys
from pathlib import Path

# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import keras_impl
import torch_impl
from shared import PAD, Seq2SeqConfig
from shared.core.compare import STATE_ATOL, assert_close
from shared.layout import random_weights

B, CHUNK = 5, 4
config = Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, embedding_dim=6, hidden_size=7,
                       num_layers=2)
weights = random_weights(config, seed=0)
keras_model = keras_impl.build_model(config)
keras_impl.import_weights(keras_model, weights)
torch_model = torch_impl.build_model(config)
torch_impl.import_weights(torch_model, weights)


def source(seed: int) -> np.ndarray:
    """(5, 12) ids: rows end in the third, third and first chunk, one never starts, one is 1."""
    rng = np.random.default_rng(seed)
    src = rng.integers(4, config.src_vocab_size, size=(B, 12))
    for row, length in enumerate([12, 9, 4, 0, 1]):
        src[row, length:] = PAD
    return src


def chunks(src: np.ndarray):
    return [src[:, start : start + CHUNK] for start in range(0, src.shape[1], CHUNK)]


# 1. Keras: a stateful encoder holding keras_impl's weights.
inputs = keras.Input(batch_shape=(B, CHUNK), dtype="int64")
embedding = keras.layers.Embedding(config.src_vocab_size, config.embedding_dim, mask_zero=True)
x, stateful = embedding(inputs), []
for _ in range(config.num_layers):
    layer = keras.layers.LSTM(config.hidden_size, stateful=True, return_sequences=True)
    x = layer(x)                                  # one tensor in: the mask is used
    stateful.append(layer)
keras_encoder = keras.Model(inputs, x)
embedding.set_weights(keras_model.encoder_embedding.get_weights())
for layer, trained in zip(stateful, keras_model.encoder_rnn, strict=True):
    layer.set_weights(trained.get_weights())


def keras_stateful(src: np.ndarray, reset: bool = True):
    if reset:
        for layer in stateful:
            layer.reset_state()                   # a new source starts from zeros
    for chunk in chunks(src):
        keras_encoder(chunk)                      # the state stays in the layers
    h = np.stack([np.asarray(layer.states[0]) for layer in stateful])   # (L, B, H)
    c = np.stack([np.asarray(layer.states[1]) for layer in stateful])
    return h, c


# 2. PyTorch: the encoder's nn.LSTM, chunk by chunk, carrying (h, c).
def torch_carrying(src: np.ndarray):
    h = c = torch.zeros(config.num_layers, B, config.hidden_size)        # (L, B, H)
    with torch.no_grad():
        for chunk in map(torch.from_numpy, chunks(src)):
            lengths = (chunk != PAD).sum(dim=1)                           # (B,)
            packed = pack_padded_sequence(torch_model.encoder_embedding(chunk),
                                          lengths.clamp(min=1), batch_first=True,
                                          enforce_sorted=False)
            _, (h_new, c_new) = torch_model.encoder_rnn(packed, (h, c))
            empty = (lengths == 0).view(1, B, 1)  # packed anyway as one PAD step: undo it
            h, c = torch.where(empty, h, h_new), torch.where(empty, c, c_new)
    return h.numpy(), c.numpy()


# 3. Ours: encode(model, chunk, initial_state=state), on any engine.
def ours(backend, model, src: np.ndarray):
    state = None
    for chunk in chunks(src):
        state = backend.encode(model, chunk, initial_state=state)         # each (L, B, H)
    return state


first, second = source(3), source(7)
whole = keras_impl.encode(keras_model, first)                             # (h, c) at once
for name, (h, c) in [("keras stateful=True", keras_stateful(first)),
                     ("torch nn.LSTM carrying (h, c)", torch_carrying(first)),
                     ("encode(initial_state=) keras_impl", ours(keras_impl, keras_model, first)),
                     ("encode(initial_state=) torch_impl", ours(torch_impl, torch_model, first))]:
    assert_close(f"{name}: h", h, whole[0], STATE_ATOL)
    assert_close(f"{name}: c", c, whole[1], STATE_ATOL)
    print(f"{name:36s} ends where the whole source does (h, c within {STATE_ATOL:g})")

# The next source: after reset_state() it starts from zeros; without, from the last state.
expected = keras_impl.encode(keras_model, second)
h, _ = keras_stateful(second)
assert_close("stateful, after reset_state", h, expected[0], STATE_ATOL)
h, _ = keras_stateful(second, reset=False)
stale = float(np.abs(h - keras_stateful(second)[0]).max())
assert stale > 100 * STATE_ATOL, stale
print(f"without reset_state(), the next source's h is off by {stale:.2f}")
