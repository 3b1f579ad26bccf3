"""ONNX node names mapped back to the names of the modules or layers that exported them.

An exporter names each node after the module or layer it comes from, plus the
operator, so the names a user's own model can load are inside them:

    exporter (producer_name)   node name                              layer name
    torch.onnx.export          /encoder/embedding/Gather              encoder.embedding
      ("pytorch")              /lstm/LSTM, /lstm/LSTM_1               lstm (one module, 2 layers)
                               /fc/MatMul + /fc/Add                   fc
    tf2onnx (TF op names)      model/dense/Tensordot/MatMul           dense
                               StatefulPartitionedCall/model/
                                 embedding/embedding_lookup           embedding
                               model/lstm/PartitionedCall/LSTM__31    lstm
    a name with no layer in it /LSTM, LSTM__31                        lstm (its operator, lowered)

The trailing operator (``{op}``, ``{op}_N``, tf2onnx's ``{op}__N``) is dropped;
from tf2onnx's TF scopes, the layer is the scope after the model's name.  Where
two layers would get one name and are not one stacked module, each keeps its
whole node name, dotted (``attention.MatMul_1``), so that no name is used twice.
"""

from __future__ import annotations

import re

WRAPPERS = {"StatefulPartitionedCall", "PartitionedCall"}  # tf.function call scopes


def layer_name(node_name: str, op: str, producer: str) -> str:
    """The module or layer name inside ``node_name`` ("" when there is none)."""
    parts = [p for p in node_name.replace(".", "/").split("/") if p]
    if parts and re.fullmatch(rf"{re.escape(op)}(_\d+|__\d+)?", parts[-1]):
        parts = parts[:-1]
    if producer == "tf2onnx":
        parts = [p for p in parts if p not in WRAPPERS]
        return parts[1] if len(parts) > 1 else ""
    return ".".join(parts)


def full_name(node_name: str) -> str:
    """A node's whole name as a module path: "/lstm/LSTM" -> "lstm.LSTM"."""
    return ".".join(p for p in node_name.replace(".", "/").split("/") if p)
