"""seq2seq-rosetta on Keras 3 (TensorFlow): the same API as ``torch_impl``.

    import keras_impl as backend        # or: import torch_impl as backend
    model = backend.build_model(config)
    h, c = backend.encode(model, src)   # the hand-off, each (L, B, H_dec)

Importing this package loads Keras and TensorFlow and never PyTorch.
"""

import os

# This package runs Keras on TensorFlow (it compiles with tf.function): say so
# before Keras is first imported, unless the user already chose.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_impl needs Keras on the TensorFlow backend; "
        f"KERAS_BACKEND is {keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow."
    )

from keras_impl.api import (
    beam_decode,
    build_model,
    decode,
    encode,
    forward,
    greedy_decode,
)
from keras_impl.model import Seq2Seq
from keras_impl.ported import load_ported
from keras_impl.train import loss_and_gradients, train
from keras_impl.weights import export_weights, import_weights

NAME = "keras"

__all__ = [
    "NAME",
    "Seq2Seq",
    "beam_decode",
    "build_model",
    "decode",
    "encode",
    "export_weights",
    "forward",
    "greedy_decode",
    "import_weights",
    "load_ported",
    "loss_and_gradients",
    "train",
]
