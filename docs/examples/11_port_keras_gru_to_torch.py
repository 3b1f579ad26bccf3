"""How do I move a Keras GRU layer into torch.nn.GRU and back, and what goes wrong if I don't?

The LSTM port is transposes and a bias split (example 04).  A GRU adds two traps
(keras-team/keras#15915: "LSTM copy matched, GRU not close enough"):

- the gate order: Keras stacks z, r, h; PyTorch stacks r, z, n.  The first two
  blocks swap; the candidate (Keras's h, PyTorch's n) stays last.
- the reset gate's place: PyTorch computes
      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      (reset AFTER the product)
  which Keras computes only with ``reset_after=True`` (its default), keeping two
  biases as a (2, 3H) array [input; recurrent].  ``b_hn`` sits inside r * (...),
  so it cannot be added into ``b_in``.  A ``reset_after=False`` GRU (Keras 2's and
  TF1's) resets before the product, n = tanh(W_in x + W_hn (r * h) + b_n): no
  ``nn.GRU`` computes that, and ``keras_gru_to_torch`` refuses its (3H,) bias.

Here E == H, on purpose: then swapped blocks have the right shapes and only the
numbers show the mistake.  Each wrong port below runs and is caught.

Run: python docs/examples/11_port_keras_gru_to_torch.py

Shapes: B batch, T time steps, E input width, H hidden.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras
import numpy as np
import torch
from torch import nn

from shared.core.compare import STATE_ATOL, assert_close, compare, format_table
from shared.layout import keras_gru_to_torch, torch_gru_to_keras

B, T, E, H = 3, 6, 4, 4
NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def torch_gru(arrays) -> nn.GRU:
    """An nn.GRU(E, H, batch_first=True) holding (weight_ih, weight_hh, bias_ih, bias_hh)."""
    gru = nn.GRU(E, H, batch_first=True)
    with torch.no_grad():
        for name, array in zip(NAMES, arrays, strict=True):
            getattr(gru, name).copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return gru


def run(gru: nn.GRU, x: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        output, h_n = gru(torch.from_numpy(x), torch.from_numpy(h0[None]))  # (B, T, H), (1, B, H)
    return output.numpy(), h_n[0].numpy()


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, E)).astype("float32")                   # (B, T, E)
    h0 = rng.uniform(-0.5, 0.5, (B, H)).astype("float32")                  # (B, H)
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True)  # reset_after=True
    layer.build((None, T, E))
    # Random values everywhere, the biases too: zero biases would hide the bias traps.
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                       for w in layer.get_weights()])
    output, h_keras = (np.asarray(t) for t in layer(x, initial_state=[h0]))  # (B, T, H), (B, H)

    kernel, recurrent_kernel, bias = layer.get_weights()     # (E, 3H), (H, 3H), (2, 3H)
    print("Keras   kernel", kernel.shape, "recurrent_kernel", recurrent_kernel.shape,
          "bias", bias.shape, "(gates z, r, h; rows input, recurrent)")
    ported = keras_gru_to_torch(kernel, recurrent_kernel, bias)
    print("PyTorch weight_ih", ported[0].shape, "weight_hh", ported[1].shape,
          "bias_ih", ported[2].shape, "bias_hh", ported[3].shape, "(gates r, z, n)")

    W_ih, W_hh, b_ih, b_hh = ported
    folded_ih, folded_hh = b_ih.copy(), b_hh.copy()
    folded_ih[2 * H:] += b_hh[2 * H:]                        # b_hn moved out of r * (...)
    folded_hh[2 * H:] = 0
    attempts = {
        "keras_gru_to_torch": ported,
        # transposed, but the z and r blocks left in Keras's order
        "r and z not swapped": (kernel.T, recurrent_kernel.T, bias[0], bias[1]),
        # Keras's bias rows are [input; recurrent]: read the other way round
        "bias rows swapped": (W_ih, W_hh, b_hh, b_ih),
        # the LSTM habit of one summed bias: wrong for n, whose b_hn is multiplied by r
        "b_hn folded into b_in": (W_ih, W_hh, folded_ih, folded_hh),
    }
    results = []
    for name, arrays in attempts.items():
        out, h_n = run(torch_gru(arrays), x, h0)
        results.append(compare(f"{name}: output", out, output, STATE_ATOL))
        results.append(compare(f"{name}: h_n", h_n, h_keras, STATE_ATOL))
    print("each port's outputs against Keras's (a FAIL row is a porting bug, caught):")
    print(format_table(results))
    assert results[0].ok and results[1].ok, f"{results[0]}; {results[1]}"
    for wrong in results[2::2]:
        assert wrong.max_abs_diff > 1e-3, f"{wrong.name} should be caught: {wrong}"

    # And back: PyTorch's four arrays give Keras's three exactly (a permutation, no arithmetic).
    for name, back, original in zip(("kernel", "recurrent_kernel", "bias"),
                                    torch_gru_to_keras(*ported),
                                    (kernel, recurrent_kernel, bias), strict=True):
        np.testing.assert_array_equal(back, original, err_msg=f"round trip of {name}")
    print("PyTorch -> Keras gives the Keras arrays back exactly")

    # A reset_after=False GRU has one (3H,) bias and resets before the product: refused.
    old = keras.layers.GRU(H, reset_after=False)
    old.build((None, T, E))
    try:
        keras_gru_to_torch(*old.get_weights())
    except ValueError as err:
        print("reset_after=False:", str(err).splitlines()[0])
    else:
        raise AssertionError("a reset_after=False GRU has no nn.GRU equivalent")

    # The hand-off of a GRU is h alone: the final state a Keras GRU returns is nn.GRU's h_n.
    print(assert_close("hand-off h: Keras final state vs nn.GRU h_n",
                       run(torch_gru(ported), x, h0)[1], h_keras, STATE_ATOL))


if __name__ == "__main__":
    main()
