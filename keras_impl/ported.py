"""Load a file written by ``seq2seq-rosetta port --to keras`` into a user's Keras model.

The mirror of ``torch_impl/ported.py``: both match by layer name, strictly both
ways, with the same messages (``shared.port.loading``).  Keras layers are found
where a model keeps them: a Functional or Sequential model's by name (nested
models looked into), a subclassed model's and a custom layer's by attribute
path, as Keras 3 saves them (``encoder.gru`` is the key ``encoder_gru``; a list
attribute's items are named after their class, ``heads.dense``, ``heads.dense_1``).
"""

from __future__ import annotations

from functools import cache

import keras

from keras_impl.activations import keras2_hard_sigmoid
from shared.port.files import load_ported_file
from shared.port.layers import keras_name
from shared.port.loading import check_activations, file_layers, left_alone, match
from shared.port.readers.keras_config import snake_case, unique_name


def _own(layer) -> bool:
    """Whether ``layer`` is one of Keras's own classes (an LSTM, a Dense), not a user's."""
    return type(layer).__module__.startswith("keras.")


@cache
def _base_attributes() -> frozenset:
    """What every Layer has: not a user's sublayer (Keras's ``get_attr_skipset``; the one
    extra name is TensorFlow's record of the same sublayers again)."""
    return frozenset({*dir(keras.layers.Layer()), "_self_unconditional_dependency_names"})


def _sublayers(layer) -> list[tuple[str, object]]:
    """(attribute path part, layer) of a custom layer's or subclassed model's own sublayers."""
    found = []
    for attribute in sorted(vars(layer)):
        value = vars(layer)[attribute]
        if attribute in _base_attributes():
            continue
        if isinstance(value, keras.layers.Layer):
            found.append((attribute, value))
        elif isinstance(value, list | tuple | dict):
            used: dict[str, int] = {}
            items = value.values() if isinstance(value, dict) else value
            found.extend((f"{attribute}_{unique_name(snake_case(type(item).__name__), used)}", item)
                         for item in items if isinstance(item, keras.layers.Layer))
    return found


def _weighted_layers(model, prefix: str = "") -> dict:
    """{name: layer} for every layer with weights, nested models and custom layers looked into."""
    found = {}
    if isinstance(model, keras.Sequential | keras.Model) and _own(model):  # Functional, Sequential
        children = [(keras_name(layer.name), layer) for layer in model.layers]
    else:  # a subclassed model or a custom layer: its attributes, as Keras saves them
        children = _sublayers(model)
    for name, layer in children:
        key = f"{prefix}{name}"
        if isinstance(layer, keras.Model) or (not _own(layer) and _sublayers(layer)):
            found.update(_weighted_layers(layer, f"{prefix}" if _own(layer) else f"{key}_"))
        elif layer.weights:
            found[key] = layer
    return found


def _parts(layer) -> list[tuple[str, object]]:
    """(weight name prefix, layer holding the variables): two for a Bidirectional layer."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [("forward.", layer.forward_layer), ("backward.", layer.backward_layer)]
    return [("", layer)]


def _activation(function) -> str:
    """An activation function's name as a ported file records it."""
    if function is keras2_hard_sigmoid:
        return "keras2_hard_sigmoid"
    name = keras.activations.serialize(function)
    return name if isinstance(name, str) else getattr(function, "__name__", repr(function))


def _activations(layers: dict) -> dict[str, dict]:
    """{name: {"activation": ..., "recurrent_activation": ...}} of each LSTM/GRU (forward part)."""
    found = {}
    for name, layer in layers.items():
        cell = getattr(_parts(layer)[0][1], "cell", None)
        if cell is not None and hasattr(cell, "recurrent_activation"):
            found[name] = {"activation": _activation(cell.activation),
                           "recurrent_activation": _activation(cell.recurrent_activation)}
    return found


def load_ported(model, path) -> list[str]:
    """Set ``model``'s layers from a ported ``.safetensors`` file, by layer name.

    Args:
        model: a built Keras model whose layers are named as the port printed them.
        path: the file ``seq2seq-rosetta port --to keras`` wrote.

    Returns:
        The names of the model's layers left as they were because a ``--partial`` port
        skipped them ([] for a whole port).

    Raises:
        PortError (a ValueError): the file cannot be read, or it does not fit the model
            (a missing or extra layer, a shape, a recurrent layer's activation); every
            mismatch is named, and nothing is set.
    """
    path = str(path)
    ported = load_ported_file(path, "keras")
    given = file_layers(ported.tensors, "keras")
    layers = _weighted_layers(model)
    wanted = {name: {f"{prefix}{v.name}": tuple(v.shape)
                     for prefix, part in _parts(layer) for v in part.weights}
              for name, layer in layers.items()}
    alone = left_alone(wanted, ported.skipped, "keras")
    match(path, given, {name: w for name, w in wanted.items() if name not in alone})
    check_activations(path, ported.activations, _activations(layers))
    for name, layer in layers.items():
        if name in alone:
            continue
        for prefix, part in _parts(layer):
            part.set_weights([given[name][f"{prefix}{v.name}"] for v in part.weights])
    return alone
