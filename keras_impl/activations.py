"""Keras 2's hard_sigmoid, for layers ported from Keras 2 files: clip(0.2 x + 0.5, 0, 1).

The mirror of ``torch_impl/activations.py``.  Keras 3 kept the name and changed
the curve: its ``hard_sigmoid`` is relu6(x + 3) / 6, that is clip(x / 6 + 0.5,
0, 1), and until Keras 2.3.0 Keras 2's was every LSTM's and GRU's default
``recurrent_activation``.  A Keras 2 layer built in Keras 3 with
``recurrent_activation="hard_sigmoid"`` runs without an error and gives h off by
about 1e-2; ``seq2seq-rosetta port`` prints this function instead:

    keras.layers.LSTM(8, recurrent_activation=keras_impl.keras2_hard_sigmoid)

It is registered with Keras (``seq2seq_rosetta>keras2_hard_sigmoid``), so a model
built with it saves and, once ``keras_impl`` is imported, loads again.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="seq2seq_rosetta")
def keras2_hard_sigmoid(x):
    """Keras 2's hard sigmoid: 0.2 x + 0.5 clipped to [0, 1] (0 below -2.5, 1 above 2.5).

    Args:
        x: a tensor of any shape.

    Returns:
        A tensor of the same shape.
    """
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)
