"""Keras's activations by name, and the one name whose function changed in Keras 3.

A Keras LSTM or GRU names its activations in its config ("tanh", "sigmoid",
"hard_sigmoid", ...).  Every name means the same function in Keras 2 (Keras
<= 2.15 and TensorFlow's tf.keras) and in Keras 3, except one:

    name           Keras 2                          Keras 3
    hard_sigmoid   clip(0.2 x + 0.5, 0, 1)          relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)

and it was the default ``recurrent_activation`` of every LSTM and GRU until
Keras 2.3.0.  So a Keras 2 file's "hard_sigmoid" is never written for Keras 3 as
"hard_sigmoid" (h would be off by about 1e-2, with no error anywhere): it is
written as ``keras_impl.keras2_hard_sigmoid``, an activation that computes Keras
2's curve, and ``--check`` runs the source side with ``KERAS2`` below, Keras 2's
own definitions in NumPy.

    for_keras3("hard_sigmoid", keras_version=2)   # Code("keras_impl.keras2_hard_sigmoid")
    for_keras3("hard_sigmoid", keras_version=3)   # "hard_sigmoid"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.reference.cells import sigmoid


@dataclass(frozen=True)
class Code:
    """A value the report prints as code, not as a literal (``keras_impl.keras2_hard_sigmoid``)."""

    text: str

    def __repr__(self) -> str:
        return self.text

    @property
    def name(self) -> str:
        """The last part of the dotted name: "keras2_hard_sigmoid"."""
        return self.text.rsplit(".", 1)[-1]


KERAS2_HARD_SIGMOID = Code("keras_impl.keras2_hard_sigmoid")

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


# Keras 2's activations (keras/activations.py, TensorFlow backend), on float64 arrays.
KERAS2 = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "exponential": np.exp,
}
# keras.activations' own names in Keras 3: any other string in a config names code that
# port never runs (a file may say "os.system"), and is refused before anything is written.
KERAS3 = frozenset({
    "linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "relu6", "leaky_relu", "elu",
    "selu", "celu", "gelu", "glu", "silu", "swish", "hard_silu", "hard_swish", "mish",
    "softmax", "log_softmax", "softplus", "softsign", "exponential", "log_sigmoid",
    "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "squareplus", "sparse_plus",
    "sparsemax", "threshold",
})
# The names whose Keras 3 function is not Keras 2's, and what computes Keras 2's there.
KERAS3_DIFFERS = {"hard_sigmoid": KERAS2_HARD_SIGMOID}


def for_keras3(name: str, keras_version: int) -> str | Code:
    """What a Keras 3 layer must be given to compute what ``name`` computed in that version."""
    return KERAS3_DIFFERS.get(name, name) if keras_version < 3 else name


def described(name: str, keras_version: int) -> str:
    """``name`` for a report, saying whose function it is where the versions differ."""
    if keras_version < 3 and name in KERAS3_DIFFERS:
        return f"{name!r} (Keras 2's: clip(0.2x + 0.5, 0, 1), not Keras 3's)"
    return repr(name)
