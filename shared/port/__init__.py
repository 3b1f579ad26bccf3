"""Port a user's own model files between frameworks, layer by layer, with a proof per layer.

    seq2seq-rosetta port s2s_model.keras --to torch --out s2s.safetensors --check

or in Python:

    from shared import port
    source = port.read("s2s_model.keras")          # named layers, canonical gate by gate
    written = port.write(source, "torch", "s2s.safetensors")
    rows = port.check(written)                     # each layer run in both frameworks
    report = port.port("s2s_model.keras", "torch", "s2s.safetensors", check=True)

Sources (recognised by content, ``shared.port.detect``): Keras 3 ``.keras`` and
legacy ``.h5`` models (Keras 2's too, with its activations and its cuDNN layers),
subclassed Keras models (``.keras``, ``.weights.h5``: read by their structure),
PyTorch state_dicts (``.pt``/``.pth``/``.bin`` read with
``torch.load(weights_only=True)``, also inside training checkpoints, or
``.safetensors``), TF1 and TF2 checkpoints and ONNX models.  Targets: a PyTorch
state_dict or a Keras ``.safetensors`` that ``torch_impl.load_ported`` /
``keras_impl.load_ported`` load by layer name; ``--partial`` writes what the target
can express and lists the rest.

The package is framework-free where it can be: importing it loads no framework;
each reader imports its framework only to read that framework's files.  One
module per step: ``readers`` (one per source format) turn a file into
``layers.Source``; ``rules`` refuses what a target cannot express; ``writers``
write DST; ``checking`` and the ``runners`` (one per framework) prove it.  The
command itself is ``shared.app.commands.port``.  docs/porting.md tells the whole story.

May import: shared.core, shared.files, shared.layout, shared.reference, shared.onnx,
shared.checkpoint; NumPy, safetensors and the standard library.
"""

from shared.port.api import Report, port, read, write
from shared.port.checking import CheckRow, check
from shared.port.detect import KINDS, detect
from shared.port.files import TargetLayer, Written
from shared.port.layers import (
    TARGETS,
    Dense,
    Embedding,
    PortError,
    Recurrent,
    Source,
    Unportable,
    Weightless,
)
from shared.port.rules import refusals

__all__ = [
    "KINDS",
    "TARGETS",
    "CheckRow",
    "Dense",
    "Embedding",
    "PortError",
    "Recurrent",
    "Report",
    "Source",
    "TargetLayer",
    "Unportable",
    "Weightless",
    "Written",
    "check",
    "detect",
    "port",
    "read",
    "refusals",
    "write",
]
