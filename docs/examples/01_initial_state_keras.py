"""How do I set the initial (h, c) of a Keras LSTM, and in what order does it return them?

Answers the seed question's second part for Keras 3:

* ``LSTM(return_state=True)`` returns ``[output, h, c]``: h first, then c.
* ``lstm(x, initial_state=[h0, c0])`` starts the layer from (h0, c0), h first.
* ``LSTMCell`` keeps its state as ``[h, c]``; one call is one step.
* ``Bidirectional(LSTM(..., return_state=True))`` returns five tensors:
  ``[output, h_fw, c_fw, h_bw, c_bw]``, and takes ``initial_state`` in that order.
* With ``Embedding(mask_zero=True)`` a padded step keeps the state, and the
  output there repeats the last real output (``Bidirectional`` writes zeros).
  That holds for a layer called on the embedding alone: one also given
  ``initial_state=`` drops the mask unless ``mask=`` is passed (example 09).
* States pass between layers in a functional model: that is the hand-off.

Every claim is checked against the NumPy reference LSTM (``shared.reference``),
which knows nothing about Keras.

Run: python docs/examples/01_initial_state_keras.py

Shapes: B batch, T time steps, E input width, H hidden.
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

from shared import reference
from shared.core.compare import STATE_ATOL, assert_close
from shared.layout import keras_lstm_to_torch

B, T, E, H = 3, 5, 4, 6


def randomize(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    """Give every weight random values: Keras's zero bias would hide a gate-order mistake."""
    shapes = [w.shape for w in layer.get_weights()]
    layer.set_weights([rng.uniform(-0.5, 0.5, shape).astype("float32") for shape in shapes])


def reference_layer(cell, x, h0, c0, lengths=None, reverse=False):
    """The NumPy LSTM run with ``cell``'s weights: (outputs (B, T, H), (h, c) each (B, H))."""
    arrays = (np.asarray(v) for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    params = keras_lstm_to_torch(*arrays)  # (4H, E), (4H, H), (4H,), (4H,)
    lengths = np.full(len(x), x.shape[1]) if lengths is None else lengths
    return reference.lstm_layer(x, lengths, h0, c0, *params, reverse=reverse)


def check_directions(bilstm, x, lengths, got, initial, said):
    """Each direction's (h, c) against the reference started from ``initial``
    (h_fw0, c_fw0, h_bw0, c_bw0: the order ``initial_state`` takes); the outputs of both."""
    outputs = []
    for k, (direction, layer) in enumerate(
            (("fw", bilstm.forward_layer), ("bw", bilstm.backward_layer))):
        h0, c0 = initial[2 * k: 2 * k + 2]
        out, (h_ref, c_ref) = reference_layer(layer.cell, x, h0, c0, lengths, reverse=k == 1)
        assert_close(f"h_{direction}{said}", got[2 * k], h_ref, STATE_ATOL)
        assert_close(f"c_{direction}{said}", got[2 * k + 1], c_ref, STATE_ATOL)
        outputs.append(out)
    return outputs


def return_state_order(rng: np.random.Generator) -> None:
    x = rng.standard_normal((B, T, E)).astype("float32")                   # (B, T, E)
    lstm = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    lstm.build((None, T, E))
    randomize(lstm, rng)

    results = lstm(x)
    assert len(results) == 3, "return_state=True gives [output, h, c]"
    output, h, c = (np.asarray(r) for r in results)                       # (B, T, H), (B, H) x2
    print("LSTM(return_sequences=True, return_state=True) ->",
          [tuple(r.shape) for r in results], "= [output, h, c]")
    zeros = np.zeros((B, H), "float32")
    _, (h_ref, c_ref) = reference_layer(lstm.cell, x, zeros, zeros)
    assert_close("h (second result)", h, h_ref, STATE_ATOL)
    assert_close("c (third result)", c, c_ref, STATE_ATOL)
    assert_close("h is the last output", h, output[:, -1], 1e-7)
    # h = o * tanh(c) always lies in (-1, 1); c is unbounded: they are different things.
    assert np.abs(c - h).max() > 1e-2

    # Set the initial state: a list [h0, c0], hidden state first.
    h0 = rng.uniform(-0.9, 0.9, (B, H)).astype("float32")                 # (B, H)
    c0 = rng.uniform(-2.0, 2.0, (B, H)).astype("float32")                 # (B, H)
    output, h, c = (np.asarray(r) for r in lstm(x, initial_state=[h0, c0]))
    out_ref, (h_ref, c_ref) = reference_layer(lstm.cell, x, h0, c0)
    assert_close("output from initial_state=[h0, c0]", output, out_ref, STATE_ATOL)
    assert_close("h from initial_state=[h0, c0]", h, h_ref, STATE_ATOL)
    assert_close("c from initial_state=[h0, c0]", c, c_ref, STATE_ATOL)
    # TF1's (c, h) order given to Keras is silently wrong: the shapes match.
    swapped = np.asarray(lstm(x, initial_state=[c0, h0])[0])
    assert np.abs(swapped - out_ref).max() > 1e-2, "initial_state=[c, h] must not pass"
    print("initial_state=[h0, c0] matches the reference; [c0, h0] differs by",
          f"{np.abs(swapped - out_ref).max():.2f}")

    # The cell is one step; its state is the list [h, c] and its output is h.
    cell = keras.layers.LSTMCell(H)
    cell.build((None, E))
    cell.set_weights(lstm.cell.get_weights())
    step_output, (h1, c1) = cell(x[:, 0], [h0, c0])                       # (B, H), [(B, H)] x2
    h1_ref, c1_ref = reference.lstm_cell(
        x[:, 0], h0, c0, *keras_lstm_to_torch(*cell.get_weights())
    )
    assert_close("LSTMCell new h", h1, h1_ref, STATE_ATOL)
    assert_close("LSTMCell new c", c1, c1_ref, STATE_ATOL)
    assert_close("LSTMCell output is h", step_output, h1, 0.0)
    print("LSTMCell(x_t, [h, c]) ->", tuple(step_output.shape), "and states [h, c]")


def bidirectional_five_results(rng: np.random.Generator) -> None:
    ids = np.array([[5, 3, 7, 2, 4], [6, 2, 0, 0, 0], [1, 9, 8, 0, 0]])  # (B, T), 0 is PAD
    lengths = (ids != 0).sum(axis=1)                                       # (B,)
    mask = ids != 0                                                        # (B, T)
    x = rng.standard_normal((B, T, E)).astype("float32")                   # (B, T, E)
    bilstm = keras.layers.Bidirectional(
        keras.layers.LSTM(H, return_sequences=True, return_state=True)
    )
    results = bilstm(x, mask=mask)
    assert len(results) == 5, "Bidirectional(return_state=True) gives 5 results"
    randomize(bilstm, rng)
    output, h_fw, c_fw, h_bw, c_bw = (np.asarray(r) for r in bilstm(x, mask=mask))
    print("Bidirectional(LSTM(return_state=True)) ->",
          [tuple(r.shape) for r in results], "= [output, h_fw, c_fw, h_bw, c_bw]")

    zeros = np.zeros((B, H), "float32")
    out_fw, out_bw = check_directions(bilstm, x, lengths, (h_fw, c_fw, h_bw, c_bw), [zeros] * 4, "")
    # The output is [forward | backward] per step; Bidirectional writes zeros at padding.
    assert_close("Bidirectional output", output, np.concatenate([out_fw, out_bw], -1), STATE_ATOL)
    assert not output[1, 2:].any(), "Bidirectional zeroes padded steps"

    # initial_state: the first half of the list starts the forward layer, the rest the backward.
    h_fw0, c_fw0, h_bw0, c_bw0 = rng.uniform(-0.9, 0.9, (4, B, H)).astype("float32")
    _, h_fw, c_fw, h_bw, c_bw = bilstm(x, mask=mask, initial_state=[h_fw0, c_fw0, h_bw0, c_bw0])
    check_directions(bilstm, x, lengths, (h_fw, c_fw, h_bw, c_bw), (h_fw0, c_fw0, h_bw0, c_bw0),
                     " from initial_state")
    print("Bidirectional initial_state=[h_fw, c_fw, h_bw, c_bw] matches the reference")


def masking_keeps_state(rng: np.random.Generator) -> None:
    ids = np.array([[5, 3, 7, 2, 4], [6, 2, 0, 0, 0], [1, 9, 8, 0, 0]])  # (B, T), 0 is PAD
    lengths = (ids != 0).sum(axis=1)                                       # (B,)
    embedding = keras.layers.Embedding(10, E, mask_zero=True)
    lstm = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    x = embedding(ids)                                                     # (B, T, E) + mask
    lstm(x)
    randomize(lstm, rng)
    output, h, c = (np.asarray(r) for r in lstm(x))
    zeros = np.zeros((B, H), "float32")
    _, (h_ref, c_ref) = reference_layer(lstm.cell, np.asarray(x), zeros, zeros, lengths)
    assert_close("masked h (state at the last real token)", h, h_ref, STATE_ATOL)
    assert_close("masked c (state at the last real token)", c, c_ref, STATE_ATOL)
    for row, length in enumerate(lengths):
        # A masked step repeats the previous output; packed PyTorch would give zeros.
        repeated = np.repeat(output[row, length - 1][None], ids.shape[1] - length, axis=0)
        assert_close(f"row {row} padded outputs", output[row, length:], repeated, 0.0)
    print("mask_zero=True: padded steps keep (h, c) and repeat the last output; lengths",
          lengths.tolist())


def states_flow_between_layers(rng: np.random.Generator) -> None:
    """The seed's second answer said Keras layers cannot share states. They can."""
    question = keras.Input(shape=(None, E))                                # (B, S, E)
    answer = keras.Input(shape=(None, E))                                  # (B, T, E)
    encoder = keras.layers.LSTM(H, return_state=True, name="encoder")
    decoder = keras.layers.LSTM(H, return_sequences=True, name="decoder")
    _, h, c = encoder(question)                                            # (B, H) x2
    outputs = decoder(answer, initial_state=[h, c])                        # (B, T, H)
    model = keras.Model([question, answer], outputs)
    randomize(encoder, rng)
    randomize(decoder, rng)

    src = rng.standard_normal((B, 7, E)).astype("float32")                 # (B, S, E)
    tgt = rng.standard_normal((B, T, E)).astype("float32")                 # (B, T, E)
    zeros = np.zeros((B, H), "float32")
    _, (h_enc, c_enc) = reference_layer(encoder.cell, src, zeros, zeros)
    expected, _ = reference_layer(decoder.cell, tgt, h_enc, c_enc)
    assert_close("decoder outputs after the (h, c) hand-off", model([src, tgt]), expected,
                 STATE_ATOL)
    print("functional model: encoder's [h, c] -> decoder initial_state: matches the reference")


def main() -> None:
    rng = np.random.default_rng(0)
    return_state_order(rng)
    bidirectional_five_results(rng)
    masking_keeps_state(rng)
    states_flow_between_layers(rng)


if __name__ == "__main__":
    main()
