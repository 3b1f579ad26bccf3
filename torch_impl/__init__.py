"""seq2seq-rosetta on PyTorch: the same API as ``keras_impl``.

    import torch_impl as backend        # or: import keras_impl as backend
    model = backend.build_model(config)
    h, c = backend.encode(model, src)   # the hand-off, each (L, B, H_dec)

Importing this package loads PyTorch and never TensorFlow or Keras.
"""

from torch_impl.api import (
    attention_weights,
    beam_decode,
    build_model,
    decode,
    encode,
    forward,
    greedy_decode,
)
from torch_impl.model import Seq2Seq
from torch_impl.ported import load_ported
from torch_impl.train import loss_and_gradients, train
from torch_impl.weights import export_weights, import_weights

NAME = "torch"

__all__ = [
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
    "load_ported",
    "loss_and_gradients",
    "train",
]
