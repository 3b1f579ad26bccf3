"""seq2seq-rosetta on Keras 3: the same API as ``torch_impl``, on any Keras backend.

    import keras_impl as backend        # or: import torch_impl as backend
    model = backend.build_model(config)
    h, c = backend.encode(model, src)   # the hand-off, each (L, B, H_dec)

Keras runs on the backend that ``KERAS_BACKEND`` names when Keras is first
imported: ``tensorflow`` (the default), ``jax`` or ``torch``.  The model and the
API are written in Keras alone; the few things that differ per backend
(compiling, gradients, the train step, seeding) are in ``keras_impl.per_backend``.
This package imports only Keras and its backend: never PyTorch on TensorFlow or
JAX, never TensorFlow on PyTorch or JAX (Keras itself may: see docs/keras-backends.md).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_impl.activations import keras2_hard_sigmoid
from keras_impl.api import (
    attention_weights,
    beam_decode,
    build_model,
    decode,
    encode,
    forward,
    greedy_decode,
)
from keras_impl.model import Seq2Seq
from keras_impl.per_backend import BACKEND
from keras_impl.ported import load_ported
from keras_impl.train import loss_and_gradients, train
from keras_impl.weights import export_weights, import_weights

NAME = "keras"

__all__ = [
    "BACKEND",
    "NAME",
    "Seq2Seq",
    "attention_weights",
    "beam_decode",
    "build_model",
    "decode",
    "encode",
    "export_weights",
    "forward",
    "greedy_decode",
    "import_weights",
    "keras2_hard_sigmoid",
    "load_ported",
    "loss_and_gradients",
    "train",
]
