"""Run one layer in real Keras, for ``--check``: the source's own layer or the ported one.

Takes and gives the check's conventions (those of ``run_torch``): x (B, T, in)
with real lengths (B,), states (L*D, B, H) indexed k*D + d, outputs
(B, T, D*H) zeros at padding.  Keras masks instead of packing: each row's
state stops at its last real step, and its outputs there are zeroed here.

Shape legend: B batch, T steps, H hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import numpy as np

from shared.port.activations import KERAS2_HARD_SIGMOID, Code


def rnn(kind: str, hidden: int, kwargs: dict, bidirectional: bool, weights: list[list],
        x: np.ndarray, lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
    """L stacked ``keras.layers.{kind}(hidden, **kwargs)``, layer k holding ``weights[k]``.

    Args:
        weights: per layer k, its ``get_weights()`` list (forward, then backward).

    Returns:
        (outputs (B, T, D*H), h_n (L*D, B, H), c_n (L*D, B, H) or None for a GRU).
    """
    import keras

    directions = 2 if bidirectional else 1
    mask = np.arange(x.shape[1]) < np.asarray(lengths)[:, None]  # (B, T)
    kwargs = {key: _function(value) if isinstance(value, Code) else value
              for key, value in kwargs.items()}
    y, finals = x, []
    for k, arrays in enumerate(weights):
        layer = getattr(keras.layers, kind)(hidden, return_sequences=True, return_state=True,
                                            **kwargs)
        if bidirectional:
            layer = keras.layers.Bidirectional(layer)
        layer.build((None, None, y.shape[-1]))
        layer.set_weights(arrays)
        initial = []
        for d in range(directions):  # Keras wants [h, c] per direction, forward first
            initial.append(h0[k * directions + d])
            if c0 is not None:
                initial.append(c0[k * directions + d])
        result = layer(y, initial_state=initial, mask=mask)
        # Keras repeats the last output at padding (Bidirectional: zeros); zero it either way.
        y = keras.ops.convert_to_numpy(result[0]) * mask[:, :, None]  # (B, T, D*H)
        states = [keras.ops.convert_to_numpy(s) for s in result[1:]]  # [h_f, (c_f,) h_b, ...]
        parts = len(states) // directions
        finals.extend(states[d * parts : (d + 1) * parts] for d in range(directions))
    h_n = np.stack([state[0] for state in finals])  # (L*D, B, H)
    c_n = None if c0 is None else np.stack([state[1] for state in finals])
    return y, h_n, c_n


def _function(code: Code):
    """The function a printed name stands for: ``keras_impl.keras2_hard_sigmoid``'s curve.

    (``shared`` cannot import ``keras_impl``; the function is one line, and the tests hold
    the two equal.)
    """
    import keras

    assert code == KERAS2_HARD_SIGMOID, code
    return lambda x: keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def embedding(args: tuple, weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``keras.layers.Embedding(*args)`` holding ``weight``: ids (B, T) -> (B, T, E)."""
    import keras

    layer = keras.layers.Embedding(*args)
    layer.build((None, None))
    layer.set_weights([weight])
    return keras.ops.convert_to_numpy(layer(ids))


def dense(args: tuple, kwargs: dict, arrays: list, x: np.ndarray) -> np.ndarray:
    """The linear part of ``keras.layers.Dense(*args, **kwargs)`` holding ``arrays``."""
    import keras

    layer = keras.layers.Dense(*args, **{**kwargs, "activation": None})
    layer.build((None, None, x.shape[-1]))
    layer.set_weights(arrays)
    return keras.ops.convert_to_numpy(layer(x))
