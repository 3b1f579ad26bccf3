"""How do I move one Keras LSTM layer's weights into torch.nn.LSTM, and what goes wrong if I don't?

Keras stores ``kernel`` (E, 4H), ``recurrent_kernel`` (H, 4H) and one ``bias``
(4H,), multiplied as ``x @ kernel``.  PyTorch stores ``weight_ih`` (4H, E),
``weight_hh`` (4H, H) and two biases, multiplied as ``W @ x``.  Both stack the
gates i, f, g, o, so the port is: transpose both kernels, put the bias in
``bias_ih`` and zeros in ``bias_hh`` (``shared.layout.keras_lstm_to_torch``).

Here E == H, on purpose: then a kernel swapped with the recurrent kernel has
the right shape and nothing complains; only the numbers show the mistake.
Each wrong port below runs and is caught by comparing outputs.

Last, ``copy_lstm`` (the function shown in docs/porting.md) ports a stack of
two bidirectional Keras layers into one ``nn.LSTM(num_layers=2, bidirectional=True)``.

Run: python docs/examples/04_port_keras_layer_to_torch.py

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
import torch
from torch import nn

from shared.core.compare import STATE_ATOL, assert_close, compare, format_table
from shared.layout import keras_lstm_to_torch

B, T, E, H = 3, 7, 5, 5


def torch_lstm(weight_ih, weight_hh, bias_ih, bias_hh) -> nn.LSTM:
    """An nn.LSTM(E, H, batch_first=True) holding the given arrays."""
    lstm = nn.LSTM(E, H, batch_first=True)
    with torch.no_grad():
        for name, array in zip(
            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
            (weight_ih, weight_hh, bias_ih, bias_hh),
            strict=True,
        ):
            # copy_ refuses a wrong shape, but not a wrong array of the right shape.
            getattr(lstm, name).copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return lstm


def copy_lstm(keras_layer, torch_lstm, k):
    """Keras layer k (an LSTM or a Bidirectional LSTM) into layer k of an nn.LSTM."""
    if isinstance(keras_layer, keras.layers.Bidirectional):
        directions = [(keras_layer.forward_layer, ""), (keras_layer.backward_layer, "_reverse")]
    else:
        directions = [(keras_layer, "")]
    with torch.no_grad():
        for layer, suffix in directions:
            arrays = keras_lstm_to_torch(*layer.get_weights())  # kernel, recurrent_kernel, bias
            for name, array in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), arrays,
                                   strict=True):
                getattr(torch_lstm, f"{name}_l{k}{suffix}").copy_(torch.from_numpy(array))


def run(lstm: nn.LSTM, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        output, _ = lstm(torch.from_numpy(x))                              # (B, T, H)
    return output.numpy()


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, E)).astype("float32")                   # (B, T, E)
    layer = keras.layers.LSTM(H, return_sequences=True)
    layer.build((None, T, E))
    # Random values everywhere, the bias too: Keras's zero bias would hide bias mistakes.
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                       for w in layer.get_weights()])
    expected = np.asarray(layer(x))                                        # (B, T, H)

    kernel, recurrent_kernel, bias = layer.get_weights()                   # (E, 4H), (H, 4H), (4H,)
    print("Keras  kernel", kernel.shape, "recurrent_kernel", recurrent_kernel.shape,
          "bias", bias.shape)
    ported = keras_lstm_to_torch(kernel, recurrent_kernel, bias)
    print("PyTorch weight_ih", ported[0].shape, "weight_hh", ported[1].shape,
          "bias_ih", ported[2].shape, "bias_hh", ported[3].shape)

    attempts = {
        "keras_lstm_to_torch": ported,
        # reshape instead of transpose: the error goes away, the numbers go wrong.
        "reshape, not transpose": (kernel.reshape(4 * H, E), recurrent_kernel.reshape(4 * H, H),
                                   bias, np.zeros_like(bias)),
        # E == H: the two kernels have the same shape, so nothing stops the swap.
        "kernels swapped": (recurrent_kernel.T, kernel.T, bias, np.zeros_like(bias)),
        # PyTorch adds bias_ih + bias_hh: the Keras bias must go in once.
        "bias in both biases": (kernel.T, recurrent_kernel.T, bias, bias),
    }
    results = [compare(name, run(torch_lstm(*arrays), x), expected, STATE_ATOL)
               for name, arrays in attempts.items()]
    print("each port's outputs against Keras's (a FAIL row is a porting bug, caught):")
    print(format_table(results))
    assert results[0].ok, str(results[0])
    for wrong in results[1:]:
        assert wrong.max_abs_diff > 1e-2, f"{wrong.name} should be caught: {wrong}"

    # Forgetting the transpose entirely fails loudly (unless E == 4H): the lucky case.
    try:
        torch_lstm(kernel, recurrent_kernel, bias, np.zeros_like(bias))
    except RuntimeError as err:
        print("no transpose:", str(err).splitlines()[0])
    else:
        raise AssertionError("copying an (E, 4H) kernel into weight_ih (4H, E) should fail")

    stack = [keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True))
             for _ in range(2)]
    y = x                                                                  # (B, T, E)
    for layer in stack:
        y = layer(y)                                                       # (B, T, 2H), builds it
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                           for w in layer.get_weights()])
    expected = x
    for layer in stack:
        expected = np.asarray(layer(expected))                             # (B, T, 2H)
    torch_stack = nn.LSTM(E, H, num_layers=2, bidirectional=True, batch_first=True)
    for k, layer in enumerate(stack):
        copy_lstm(layer, torch_stack, k)
    print(assert_close("2-layer bidirectional stack via copy_lstm", run(torch_stack, x),
                       expected, STATE_ATOL))


if __name__ == "__main__":
    main()
