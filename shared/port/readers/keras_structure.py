"""A subclassed Keras model's layers, told by their saved structure, not by a config.

A subclassed ``keras.Model`` (as TensorFlow's tutorials and most research code
write a seq2seq) saves a config that lists no layers, but Keras 3 saves its
weights as a tree (``saving_lib``, in a .keras file and in ``save_weights``'s
.weights.h5): one group per attribute that holds a layer, named after the
attribute (a list or dict of layers: one group per item, named after its class in
snake_case, then _1, _2, ...), and in each layer's group its arrays under
vars/0, vars/1, ...  So each layer is told by what its group holds:

    its group holds                                     read as
    cell/vars: kernel (in, G*H), recurrent_kernel       an LSTM (G = 4) or a GRU (G = 3); a
      (H, G*H), bias?                                     GRU's bias (2, 3H) resets after the
                                                          product, (3H,) before it
    forward_layer/cell/vars, backward_layer/cell/vars   a Bidirectional LSTM or GRU
    query_dense, key_dense, value_dense                 a MultiHeadAttention: not ported
    vars: kernel (in, out), bias (out,)                 a Dense
    vars: one (V, E) array                              an Embedding; a bias-free Dense when its
                                                          layer is named dense* or ``--linear``
                                                          names it (the report says which)
    vars: anything else                                 a layer type port does not know
    seed_generator/, and optimizer/ at the top          random-number and training state

A layer's name is its attribute path, dotted ("encoder.gru").  What the weights
cannot say, the report does: activations are not saved with them, so Keras's
defaults (tanh, sigmoid) are assumed.

Shape legend: E embedding, G gates, H hidden, V vocabulary.
"""

from __future__ import annotations

import math
import re

import numpy as np

from shared.port import rules
from shared.port.layers import Embedding, PortError, Unportable, float32
from shared.port.readers.keras_config import dense_layer, recurrent_layer, text

MAX_DEPTH = 32  # a model's layers nest a few levels; a file nesting deeper is not a model
STATE = re.compile(r"^seed_generator(_\d+)?$")  # a Dropout's random state, not a weight
# A MultiHeadAttention's sublayers, as Keras 3 names them (and as Keras 3.0-3.3 did).
ATTENTION = ({"query_dense", "key_dense", "value_dense"},
             {"_query_dense", "_key_dense", "_value_dense"})
BY_STRUCTURE = "(by its structure)"


def structure_layers(path: str, h5, version: int, linear: tuple[str, ...],
                     cls: str | None) -> tuple[list, list[str]]:
    """(layers, lines for the report) of a Keras 3 weights tree read by its structure."""
    found: list = []
    _walk(path, h5, (), found, version, set(linear))
    unknown = sorted(set(linear) - {layer.name for layer in found})
    if unknown:
        raise PortError(f"--linear {unknown[0]!r} names no layer of {path} (its layers: "
                        f"{', '.join(layer.name for layer in found)})")
    whose = (f"a subclassed Keras model ({cls!r}): its config lists no layers" if cls
             else "weights only (save_weights), no config")
    about = [f"{whose}, so each layer was identified by its saved structure and weight shapes "
             "(an LSTM or GRU by its recurrent kernel's 4H or 3H columns, a Dense by its kernel "
             "and bias, a lone (V, E) array as an Embedding)",
             "activations are not saved with the weights: Keras's defaults (tanh, sigmoid) are "
             "assumed; if the model's code gives a layer others, this port is wrong for that "
             "layer"]
    return found, about


def _walk(path: str, group, parts: tuple, found: list, version: int, linear: set) -> None:
    name = ".".join(parts)
    if len(parts) > MAX_DEPTH:
        raise PortError(f"{path}: its weights nest deeper than {MAX_DEPTH} groups ({name[:80]}"
                        "...); a Keras model's layers do not")
    children = sorted(key for key in group if hasattr(group.get(key), "keys"))
    cell = _arrays(path, group, "cell/vars")
    if cell:
        found.append(structured_recurrent(path, name, [cell], version))
        return
    if {"forward_layer", "backward_layer"} <= set(children):
        directions = [_arrays(path, group, f"{d}_layer/cell/vars") for d in ("forward", "backward")]
        found.append(structured_recurrent(path, name, directions, version))
        return
    if any(set(children) >= names for names in ATTENTION):
        found.append(Unportable(name, f"Keras MultiHeadAttention {BY_STRUCTURE}", rules.UNKNOWN,
                                _numbers(group)))
        return
    own = _arrays(path, group, "vars")
    if own:
        found.append(_leaf(path, name, group, own, linear))
    for child in children:
        if child == "vars" or STATE.match(child) or (not parts and child == "optimizer"):
            continue
        _walk(path, group[child], (*parts, child), found, version, linear)


def _arrays(path: str, group, where: str) -> list[np.ndarray]:
    found = group.get(where)
    if found is None or not hasattr(found, "keys"):
        return []
    keys = sorted((key for key in found if key.isascii() and key.isdigit()), key=int)
    arrays = [found[key] for key in keys]
    if any(not hasattr(array, "shape") for array in arrays):  # a group where an array belongs
        raise PortError(f"{path}: {found.name} holds a group among its arrays (0, 1, ...)")
    return [float32(f"{path}: {found.name}/{key}", array[()]) for key, array in zip(
        keys, arrays, strict=True)]


def _numbers(group) -> int:
    sizes: list[int] = []
    group.visititems(lambda _, item: sizes.append(math.prod(item.shape))
                     if hasattr(item, "shape") else None)
    return sum(sizes)


def structured_recurrent(path: str, name: str, directions: list, version: int,
                         how: str = f"Keras {{what}} {BY_STRUCTURE}"):
    """An LSTM or GRU told by its arrays' shapes (kernel, recurrent_kernel, bias?) per direction;
    ``how`` says so in the report, around its type ("Keras {what} (by its structure)")."""
    arrays = directions[0]
    shapes = ", ".join(str(a.shape) for a in arrays)
    recurrent_kernel = arrays[1] if len(arrays) > 1 else np.zeros((0, 0))
    rows, columns = recurrent_kernel.shape if recurrent_kernel.ndim == 2 else (0, 0)
    gates = columns // rows if rows and columns % rows == 0 else 0
    if gates not in (3, 4) or len(arrays) not in (2, 3):
        return Unportable(name, how.format(what=f"recurrent layer with {shapes}"),
                          rules.UNKNOWN, sum(int(a.size) for d in directions for a in d))
    cell = "LSTM" if gates == 4 else "GRU"
    bias = arrays[2] if len(arrays) == 3 else None
    config = {"units": rows, "use_bias": bias is not None,
              "reset_after": bias is None or bias.ndim == 2}
    what = f"Bidirectional({cell})" if len(directions) == 2 else cell
    layer = recurrent_layer(path, name, how.format(what=what), config, directions, version)
    if cell == "GRU" and bias is None:
        layer.notes.append("no bias saved: reset_after=True (Keras 3's default) assumed")
    return layer


def _leaf(path: str, name: str, group, arrays: list, linear: set):
    shapes = ", ".join(str(a.shape) for a in arrays)
    if len(arrays) == 2 and arrays[0].ndim == 2 and arrays[1].shape == arrays[0].shape[1:]:
        return dense_layer(path, name, f"Keras Dense {BY_STRUCTURE}", {"use_bias": True}, arrays)
    if len(arrays) == 1 and arrays[0].ndim == 2:
        layer_name = text(group["vars"].attrs.get("name", ""))
        if name in linear or layer_name.startswith("dense"):
            return dense_layer(path, name, f"Keras Dense {BY_STRUCTURE}", {"use_bias": False},
                               arrays)
        note = (f"a lone {arrays[0].shape} array (layer {layer_name!r}): read as an Embedding; "
                f"--linear {name} reads it as a bias-free Dense")
        return Embedding(name, f"Keras Embedding {BY_STRUCTURE}", "keras", arrays[0], [note])
    return Unportable(name, f"Keras layer with {shapes} {BY_STRUCTURE}", rules.UNKNOWN,
                      sum(int(a.size) for a in arrays))
