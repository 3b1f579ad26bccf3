"""``load_ported``'s matching, written once so that Keras and PyTorch say the same words.

A ported file is loaded by layer name, strictly both ways: every layer in the
file must be used, every layer of the model that has weights must be given, and
every shape must be equal.  Every mismatch is found before anything is set, and
all of them are named in one error: the model keeps its weights when it is refused.
Two things bend or tighten that:

- a ``--partial`` port lists the layers it skipped in DST's metadata: the model's
  layers of those names (and the layers inside them) are left as they are, and
  ``load_ported`` returns their names;
- a Keras DST records each recurrent layer's activations: a model layer whose
  activation is another function is refused (right weights under the wrong
  activation give wrong numbers and no error: Keras 2's hard_sigmoid is not
  Keras 3's).

    framework   a layer is                      its weights
    Keras       a layer with weights, by name   ``variable.name``: kernel, recurrent_kernel,
                ("." and "/" read as "_"); in   bias, embeddings; forward.* / backward.* for
                a custom layer or a subclassed  a Bidirectional layer
                model, by attribute path
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


def left_alone(wanted: dict, skipped: list[dict], target: str) -> list[str]:
    """The model's layers that a --partial port skipped (by name, or inside such a layer)."""
    names = [keras_name(s.get("name", "")) if target == "keras" else s.get("name", "")
             for s in skipped]
    joint = "_" if target == "keras" else "."
    return [layer for layer in wanted
            if any(layer == name or layer.startswith(f"{name}{joint}") for name in names)]


def check_activations(path: str, expected: dict[str, dict], actual: dict[str, dict]) -> None:
    """PortError naming every recurrent layer whose activations are not the file's.

    Args:
        expected: DST's {layer: {"activation": name, "recurrent_activation": name}}.
        actual: the model's, for the layers it has, the same way.
    """
    problems = []
    for layer, gates in expected.items():
        for key, name in gates.items():
            found = actual.get(layer, {}).get(key)
            if found is not None and found != name:
                hint = (" (Keras 2's hard_sigmoid: build the layer with "
                        f"{key}=keras_impl.keras2_hard_sigmoid)"
                        if name == "keras2_hard_sigmoid" else "")
                problems.append(f"layer {layer!r} computes {key}={found} but the ported weights "
                                f"need {key}={name}{hint}")
    if problems:
        raise PortError(f"{path} does not fit the model (nothing loaded): " + "; ".join(problems))


def match(path: str, given: dict[str, dict], wanted: dict[str, dict]) -> None:
    """PortError naming every layer and weight where the file and the model disagree.

    Args:
        path: the file, for the message.
        given: the file's {layer: {weight: array}}.
        wanted: the model's {layer: {weight: shape}}, less the layers left alone.
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
