"""seq2seq-rosetta on ONNX Runtime: the inference half of ``torch_impl``'s API.

    import onnx_impl as backend                       # or torch_impl, keras_impl
    model = backend.load_model("model.safetensors")   # or a folder from `seq2seq-rosetta export`
    h, c = backend.encode(model, src)                 # the hand-off, each (L, B, H_dec)
    state, memory = backend.encode(model, src, return_memory=True)   # a model with attention

The model is exported straight from the canonical weights (``shared.onnx.export``)
and run by ONNX Runtime; docs/onnx.md describes the two graphs.  Importing this
package loads onnx and onnxruntime, and never TensorFlow, Keras or PyTorch.
"""

from onnx_impl.api import (
    attention_weights,
    beam_decode,
    build_model,
    decode,
    encode,
    export_weights,
    forward,
    greedy_decode,
    import_weights,
    load_model,
)
from onnx_impl.model import Seq2Seq
from shared.onnx.export import OnnxModelError, export_checkpoint, export_onnx

NAME = "onnx"

__all__ = [
    "NAME",
    "OnnxModelError",
    "Seq2Seq",
    "attention_weights",
    "beam_decode",
    "build_model",
    "decode",
    "encode",
    "export_checkpoint",
    "export_onnx",
    "export_weights",
    "forward",
    "greedy_decode",
    "import_weights",
    "load_model",
]
