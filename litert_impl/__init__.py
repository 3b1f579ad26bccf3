"""seq2seq-rosetta on LiteRT: the inference half of ``torch_impl``'s API, on exported programs.

    import litert_impl as backend                     # or onnx_impl, torch_impl, keras_impl
    model = backend.load_model("out/litert")          # `seq2seq-rosetta export --format litert`
    h, c = backend.encode(model, src)                 # the hand-off, each (L, B, H_dec)
    tokens = backend.greedy_decode(model, src, max_len=20)

The programs, encoder.tflite and decoder.tflite, are converted from ``keras_impl``'s
model by ``keras_impl.on_device`` (TensorFlow's LiteRT converter, builtin ops only)
and run here by ``ai_edge_litert``'s interpreter.  Importing this package loads
``ai_edge_litert`` (and its ``flatbuffers``) and never TensorFlow, Keras or PyTorch:
what runs on a device is what is tested.  docs/on-device.md describes the files.

The contract (``shared.ondevice.contract``): encoder.tflite's signature ``encode``
takes ``src`` int32 (B_f, S_f) and, for a unidirectional encoder, the state to start
from (``h``, ``c``: zeros for a fresh source), and gives ``h``, ``c`` (and ``memory``,
``memory_mask`` with attention); decoder.tflite's ``decode`` takes ``tokens`` int32
(B_f,), ``h``, ``c`` (and the memory) and gives ``logits``, ``h``, ``c`` (and
``attention``); fed and read by name.
"""

from litert_impl.api import (
    attention_weights,
    beam_decode,
    decode,
    encode,
    forward,
    greedy_decode,
    load_model,
)
from litert_impl.model import Seq2Seq
from shared.ondevice.folder import OnDeviceModelError

NAME = "litert"

__all__ = [
    "NAME",
    "OnDeviceModelError",
    "Seq2Seq",
    "attention_weights",
    "beam_decode",
    "decode",
    "encode",
    "forward",
    "greedy_decode",
    "load_model",
]
