"""TF2 object-based checkpoints, read by the paths of their variables.

``tf.train.Checkpoint``, tf.keras 2.x's ``save_weights`` in the TF format and a
SavedModel's ``variables/`` folder save each variable under the chain of
attributes that leads to it from the saved object, then ``/.ATTRIBUTES/VARIABLE_VALUE``:

    tf.train.Checkpoint(model=model)     model/encoder/gru/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE
    a subclassed model's save_weights    encoder/gru/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE
    a Functional/Sequential model's      layer_with_weights-0/embeddings/.ATTRIBUTES/...

so each layer is told by the names of its variables (tf.keras 2.x names them
as Keras 3 does), its name is its object path, dotted:

    variables under object path L            read as
    cell/kernel, cell/recurrent_kernel,      an LSTM (recurrent kernel (H, 4H)) or a GRU (H, 3H)
      cell/bias
    forward_layer/cell/..., backward_layer   a Bidirectional LSTM or GRU
    embeddings                               an Embedding
    kernel (in, out), bias?                  a Dense
    anything else                            a layer port does not know
    .OPTIMIZER_SLOT/..., optimizer/...,      training state: read, not ported
      save_counter

What the checkpoint cannot say, the report does: activations are not saved, so
tf.keras 2.x's defaults (tanh, sigmoid, a GRU resetting after the product when
its bias is (2, 3H)) are assumed, and the layers run as Keras 2 layers in the check.

Shape legend: H hidden.
"""

from __future__ import annotations

import numpy as np

from shared.files.safe import brief
from shared.port import rules
from shared.port.layers import Embedding, PortError, Source, Unportable, float32
from shared.port.readers.keras_config import dense_layer
from shared.port.readers.keras_structure import structured_recurrent

OBJECT_BASED = "/.ATTRIBUTES/VARIABLE_VALUE"
TRAINING = (".OPTIMIZER_SLOT", "optimizer", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")
RECURRENT = ("cell/kernel", "cell/recurrent_kernel", "cell/bias")
DIRECTIONS = ("forward_layer", "backward_layer")
HOW = "tf.keras {what} (by its variables)"


def read_tf2(path: str, variables: dict, linear: tuple[str, ...]) -> Source:
    """The layers of an object-based checkpoint, from its variables (``readers.tf1``'s reading)."""
    if linear:
        raise PortError(f"--linear: {path} is a TF2 checkpoint, whose variable names say which "
                        "arrays are embeddings and which kernels")
    weights, training = {}, []
    for name, value in variables.items():
        if not name.endswith(OBJECT_BASED) or any(part in name.split("/") for part in TRAINING) \
                or name.split("/")[0] in TRAINING:
            training.append(name)
            continue
        weights[name[: -len(OBJECT_BASED)]] = value
    about = ["a TF2 object-based checkpoint: each layer was told by its variables' names and "
             "shapes, and is named by its object path; activations are not saved in it: "
             "tf.keras's defaults (tanh, sigmoid) are assumed"]
    roots = {name.split("/")[0] for name in weights}
    if "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in variables and len(roots) == 1 \
            and all("/" in name for name in weights):
        root = roots.pop()  # tf.train.Checkpoint(model=...): the model is its attribute
        weights = {name[len(root) + 1 :]: value for name, value in weights.items()}
        about.append(f"the model is the checkpoint's object {brief(root)}; names start "
                     "inside it")
    if any("-" in name for name in weights):
        about.append("a Functional or Sequential model's checkpoint names its layers by their "
                     "place among the layers with weights (layer_with_weights-N, written "
                     "layer_with_weights_N here): name your layers so")
    layers = _layers(path, weights)
    parameters = sum(int(np.size(value)) for value in variables.values())
    ignored = [f"{len(training)} training-state variables (optimizer slots, save_counter): "
               "not weights"] if training else []
    return Source(path, "tf1", "TF2 object-based checkpoint", layers, len(variables), parameters,
                  ignored, about=about)


def _inside(parts: list[str]) -> int:
    """How many trailing parts of a variable's path are its name inside its layer."""
    if len(parts) > 3 and parts[-3] in DIRECTIONS and parts[-2] == "cell":
        return 3  # forward_layer/cell/kernel
    if len(parts) > 2 and parts[-2] == "cell":
        return 2  # cell/kernel
    return 1


def _layers(path: str, weights: dict) -> list:
    groups: dict[str, dict] = {}  # a layer's object path -> {its variables' names: array}
    for name, value in weights.items():
        parts = name.split("/")
        depth = min(_inside(parts), len(parts) - 1) or 1
        layer, inside = "/".join(parts[:-depth]) or name, "/".join(parts[-depth:])
        groups.setdefault(layer, {})[inside] = value
    return [_layer(path, layer, arrays) for layer, arrays in groups.items()]


def _layer(path: str, layer: str, arrays: dict):
    name = layer.replace("/", ".").replace("-", "_")
    found = {key: float32(f"{path}: {layer}/{key}", value) for key, value in arrays.items()}
    order = [*RECURRENT]
    if set(found) <= set(order) and {"cell/kernel", "cell/recurrent_kernel"} <= set(found):
        return structured_recurrent(path, name, [[found[k] for k in order if k in found]], 2, HOW)
    if found and {key.split("/")[0] for key in found} == set(DIRECTIONS):
        directions = [[found[f"{side}/{k}"] for k in order if f"{side}/{k}" in found]
                      for side in DIRECTIONS]
        return structured_recurrent(path, name, directions, 2, HOW)
    if set(found) == {"embeddings"} and found["embeddings"].ndim == 2:
        return Embedding(name, HOW.format(what="Embedding"), "keras", found["embeddings"])
    if set(found) in ({"kernel"}, {"kernel", "bias"}) and found["kernel"].ndim == 2:
        use_bias = "bias" in found
        return dense_layer(path, name, HOW.format(what="Dense"), {"use_bias": use_bias},
                           [found["kernel"], *([found["bias"]] if use_bias else [])])
    shapes = ", ".join(f"{key} {value.shape}" for key, value in found.items())
    return Unportable(name, f"TF2 checkpoint object with {shapes}", rules.UNKNOWN,
                      sum(int(value.size) for value in found.values()))
