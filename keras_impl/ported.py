"""Load a file written by ``seq2seq-rosetta port --to keras`` into a user's Keras model.

The mirror of ``torch_impl/ported.py``: both match by layer name, strictly both
ways, with the same messages (``shared.port.loading``).
"""

from __future__ import annotations

import keras

from shared.port.files import load
from shared.port.layers import keras_name
from shared.port.loading import file_layers, match


def _weighted_layers(model) -> dict:
    """{name: layer} for every layer with weights, nested models looked into."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(_weighted_layers(layer))
        elif layer.weights:
            found[keras_name(layer.name)] = layer
    return found


def _parts(layer) -> list[tuple[str, object]]:
    """(weight name prefix, layer holding the variables): two for a Bidirectional layer."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [("forward.", layer.forward_layer), ("backward.", layer.backward_layer)]
    return [("", layer)]


def load_ported(model, path) -> None:
    """Set ``model``'s layers from a ported ``.safetensors`` file, by layer name.

    Args:
        model: a built Keras model whose layers are named as the port printed them.
        path: the file ``seq2seq-rosetta port --to keras`` wrote.

    Raises:
        PortError (a ValueError): the file cannot be read, or it does not fit the model;
            every mismatched layer is named, and nothing is set.
    """
    path = str(path)
    given = file_layers(load(path, "keras"), "keras")
    layers = _weighted_layers(model)
    wanted = {name: {f"{prefix}{v.name}": tuple(v.shape)
                     for prefix, part in _parts(layer) for v in part.weights}
              for name, layer in layers.items()}
    match(path, given, wanted)
    for name, layer in layers.items():
        for prefix, part in _parts(layer):
            part.set_weights([given[name][f"{prefix}{v.name}"] for v in part.weights])
