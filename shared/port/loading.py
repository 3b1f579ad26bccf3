"""``load_ported``'s matching, written once so that Keras and PyTorch say the same words.

A ported file is loaded by layer name, strictly both ways: every layer in the
file must be used, every layer of the model that has weights must be given, and
every shape must be equal.  Every mismatch is found before anything is set, and
all of them are named in one error: the model keeps its weights when it is refused.

    framework   a layer is                      its weights
    Keras       a layer with weights, by name   ``variable.name``: kernel, recurrent_kernel,
                ("." and "/" read as "_")       bias, embeddings; forward.* / backward.* for
                                                a Bidirectional layer
    PyTorch     a module path                   its state_dict entries: weight_ih_l0, ...
"""

from __future__ import annotations

from shared.port.layers import PortError, keras_name

DIRECTION_PREFIXES = ("forward", "backward")


def file_layers(tensors: dict, target: str) -> dict[str, dict]:
    """A ported file's tensors grouped by layer: {layer: {weight: array}}."""
    layers: dict[str, dict] = {}
    for name, array in tensors.items():
        layer, _, weight = name.rpartition(".")
        if target == "keras":
            head, _, last = layer.rpartition(".")
            if last in DIRECTION_PREFIXES:  # "{layer}.forward.kernel"
                layer, weight = head, f"{last}.{weight}"
            layer = keras_name(layer)
        layers.setdefault(layer, {})[weight] = array
    return layers


def match(path: str, given: dict[str, dict], wanted: dict[str, dict]) -> None:
    """PortError naming every layer and weight where the file and the model disagree.

    Args:
        path: the file, for the message.
        given: the file's {layer: {weight: array}}.
        wanted: the model's {layer: {weight: shape}}.
    """
    problems = []
    for layer in given:
        if layer not in wanted:
            problems.append(f"layer {layer!r} is in the file but the model has no layer with "
                            "weights of that name")
    for layer, weights in wanted.items():
        if layer not in given:
            problems.append(f"the model's layer {layer!r} has weights but the file has none "
                            "for it")
            continue
        for weight, shape in weights.items():
            if weight not in given[layer]:
                problems.append(f"layer {layer!r} has no {weight!r} in the file")
            elif tuple(given[layer][weight].shape) != tuple(shape):
                problems.append(f"layer {layer!r} {weight} has shape "
                                f"{tuple(given[layer][weight].shape)} in the file but "
                                f"{tuple(shape)} in the model")
        for weight in given[layer]:
            if weight not in weights:
                problems.append(f"layer {layer!r} has {weight!r} in the file but not in the model")
    if problems:
        raise PortError(
            f"{path} does not fit the model ({len(problems)} "
            f"{'problem' if len(problems) == 1 else 'problems'}, nothing loaded): "
            + "; ".join(problems)
            + f". The file's layers: {', '.join(given)}; the model's: {', '.join(wanted)}"
        )
