"""seq2seq-rosetta on ExecuTorch: the inference half of ``torch_impl``'s API, on exported programs.

    import executorch_impl as backend                 # or litert_impl, onnx_impl, torch_impl
    model = backend.load_model("out/executorch")      # `seq2seq-rosetta export --format executorch`
    h, c = backend.encode(model, src)                 # the hand-off, each (L, B, H_dec)
    tokens = backend.greedy_decode(model, src, max_len=20)

The programs, encoder.pte and decoder.pte, are lowered from ``torch_impl``'s model by
``torch_impl.on_device`` (``torch.export``, then ExecuTorch's XNNPACK delegate) and run
here by ExecuTorch's runtime.  Importing this package loads ``torch`` (the runtime's
Python binding takes and gives torch tensors) and ExecuTorch's compiled runtime, and
never ``executorch.exir`` (the exporter), TensorFlow or Keras; ``torch_impl`` is not
imported either.  On a device, the C++ runtime runs the same files without Python or
torch.  docs/on-device.md describes the files.

The contract (``shared.ondevice.contract``): encoder.pte's ``forward(src[, h, c])``
returns ``h, c[, memory, memory_mask]``, decoder.pte's ``forward(tokens, h, c[, memory,
memory_mask])`` returns ``logits, h, c[, attention]``, in exactly that order; ids are
int32, a unidirectional encoder always takes the state it starts from (zeros for a
fresh source), a bidirectional one ``src`` alone, and a GRU has no ``c``.
"""

from executorch_impl.api import (
    attention_weights,
    beam_decode,
    decode,
    encode,
    forward,
    greedy_decode,
    load_model,
)
from executorch_impl.model import Seq2Seq
from shared.ondevice.folder import OnDeviceModelError

NAME = "executorch"

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
