"""The Keras 3 trap: ``initial_state=`` silently switches off the ``mask_zero`` mask.

``Embedding(mask_zero=True)`` attaches a mask to its output, and a recurrent
layer called on that output alone picks the mask up: padded steps keep the
state, and the final (h, c) is the state at each row's last real token.  Give
the same layer an ``initial_state=`` as well -- which is exactly what a
seq2seq decoder does with the hand-off -- and the mask is dropped, with no
warning: the final state is the state after the padding.

Why: ``Layer.__call__`` fills a ``mask`` argument from the tensor's attached
mask only when the call has ONE tensor argument.  With more than one it fills
only arguments named ``{argument}_mask`` (``sequences_mask``,
``initial_state_mask``), and ``LSTM.call`` has neither
(keras/src/layers/layer.py, "Populate mask argument(s)"; Keras 3.15.1).
The fix is to pass ``mask=`` yourself, as ``keras_impl`` does; in a functional
model, ``mask=embedding.compute_mask(ids)``.

This script runs one padded row and the same row without its padding, in an
eager call and in a functional model (the keras-io way), and asserts:

* no ``initial_state``: the implicit mask works, the state is the unpadded row's;
* ``initial_state=`` and the implicit mask: the state is NOT the unpadded row's;
  it is the state after reading the padding too;
* ``initial_state=`` and ``mask=`` (or ``mask=embedding.compute_mask(ids)``):
  the unpadded row's state again.

Run: python docs/examples/09_initial_state_mask_trap.py

Shapes: B batch, T time steps (padded), E embedding, H hidden, V vocabulary.
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

import keras
import numpy as np

from shared.core.compare import STATE_ATOL, assert_close, max_abs_diff

V, E, H = 12, 4, 5
PADDED = np.array([[5, 7, 3, 0, 0, 0]])        # (B, T) = (1, 6): 3 real tokens, then PAD = 0
UNPADDED = PADDED[:, :3]                       # (1, 3): the same row, nothing to mask


def randomize(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    """Random weights everywhere: a zero bias would keep a padded step close to a no-op."""
    shapes = [w.shape for w in layer.get_weights()]
    layer.set_weights([rng.uniform(-0.5, 0.5, shape).astype("float32") for shape in shapes])


def build_layers(rng: np.random.Generator):
    embedding = keras.layers.Embedding(V, E, mask_zero=True)
    lstm = keras.layers.LSTM(H, return_state=True)   # returns [output, h, c]
    embedding.build((None, None))
    lstm.build((None, None, E))
    randomize(embedding, rng)
    randomize(lstm, rng)
    return embedding, lstm


def eager_calls(embedding, lstm, h0, c0) -> float:
    """The three calls on the padded row, against the unpadded row; returns the trap's h error."""
    _, h_true, c_true = lstm(embedding(UNPADDED), initial_state=[h0, c0])  # each (1, H)
    x = embedding(PADDED)                                                 # (1, T, E) + mask
    mask = PADDED != 0                                                    # (1, T)

    _, h, _ = lstm(embedding(UNPADDED))          # one tensor argument, nothing to mask
    _, h_masked, _ = lstm(x)                     # one tensor argument: the implicit mask works
    assert_close("no initial_state: h (implicit mask)", h_masked, h, STATE_ATOL)

    _, h_trap, c_trap = lstm(x, initial_state=[h0, c0])   # two tensor arguments: mask dropped
    error = max_abs_diff(h_trap, h_true)[0]
    assert error > 1e-2, f"initial_state= kept the mask after all (h differs by {error:.2g})"
    assert max_abs_diff(c_trap, c_true)[0] > 1e-2, "c must be off too"
    _, h_after_pad, c_after_pad = lstm(x, initial_state=[h0, c0], mask=np.ones_like(mask))
    assert_close("trap h = state after the padding", h_trap, h_after_pad, 1e-6)
    assert_close("trap c = state after the padding", c_trap, c_after_pad, 1e-6)

    _, h_fixed, c_fixed = lstm(x, initial_state=[h0, c0], mask=mask)      # the fix
    assert_close("initial_state + mask=: h", h_fixed, h_true, STATE_ATOL)
    assert_close("initial_state + mask=: c", c_fixed, c_true, STATE_ATOL)
    return error


def functional_decoder(embedding, lstm, explicit_mask: bool) -> keras.Model:
    """The keras-io decoder shape: Input -> Embedding(mask_zero) -> LSTM(initial_state=[h, c])."""
    ids = keras.Input((None,), dtype="int64")                             # (B, T)
    h_in, c_in = keras.Input((H,)), keras.Input((H,))                     # (B, H) each
    mask = embedding.compute_mask(ids) if explicit_mask else None         # (B, T) or None
    _, h, c = lstm(embedding(ids), initial_state=[h_in, c_in], mask=mask)
    return keras.Model([ids, h_in, c_in], [h, c])


def functional_models(embedding, lstm, h0, c0) -> float:
    """The trap and its fix in a functional model; returns the trap's h error."""
    trap = functional_decoder(embedding, lstm, explicit_mask=False)
    h_trap, _ = trap([PADDED, h0, c0])
    h_true, _ = trap([UNPADDED, h0, c0])
    error = max_abs_diff(h_trap, h_true)[0]
    assert error > 1e-2, "the functional model kept the mask after all"
    fixed = functional_decoder(embedding, lstm, explicit_mask=True)
    h_fixed, _ = fixed([PADDED, h0, c0])
    assert_close("functional, mask=embedding.compute_mask(ids): h", h_fixed, h_true, STATE_ATOL)
    return error


def main() -> None:
    rng = np.random.default_rng(0)
    embedding, lstm = build_layers(rng)
    h0 = rng.uniform(-0.9, 0.9, (1, H)).astype("float32")                 # (1, H): a hand-off
    c0 = rng.uniform(-2.0, 2.0, (1, H)).astype("float32")                 # (1, H)
    eager = eager_calls(embedding, lstm, h0, c0)
    functional = functional_models(embedding, lstm, h0, c0)
    print(f"keras {keras.__version__}: Embedding(mask_zero=True) -> LSTM(return_state=True)")
    print("  without initial_state: final state at the last real token (implicit mask works)")
    print(f"  with initial_state=:    state after the padding, h off by {eager:.2f} "
          f"(functional model: {functional:.2f}); no warning")
    print("  with initial_state= and mask= (functional: mask=embedding.compute_mask(ids)): "
          "state at the last real token again")


if __name__ == "__main__":
    main()
