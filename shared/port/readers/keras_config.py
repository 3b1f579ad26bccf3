"""What each layer of a Keras model config is, for the Keras readers (``readers.keras``).

A Functional or Sequential model's config lists its layers; each entry says its
class and options, and a weight store (``readers.keras``: a .keras file's or a
legacy .h5's) gives its arrays.  Configs come in the shapes each Keras wrote:

    writer                       top level                               layers
    Keras 3, tf.keras >= 2.4     {"class_name": "Functional"|"Sequential",  config["layers"]
                                  "config": {...}}
    Keras <= 2.3, tf.keras <= 2.3 {"class_name": "Model"|"Sequential", ...}  config["layers"]
    Keras <= 2.1 Sequential      {"class_name": "Sequential", "config": [...]} the list itself

A config of any other shape (a layer that is not an object, options that are not
an object) is one ``PortError`` naming where, never a TypeError.  A model whose
config lists no layers (a subclassed ``keras.Model``) is read by its weights'
structure instead (``readers.keras_structure``).

What the semantics depend on (``Recurrent.origin``): a file written by Keras 2
keeps Keras 2's activations (``shared.port.activations``), and a ``CuDNNLSTM`` or
``CuDNNGRU`` keeps cuDNN's weight layout (``canonical.from_cudnn``).
"""

from __future__ import annotations

import re

import numpy as np

from shared.files.safe import brief
from shared.port import activations, rules
from shared.port.canonical import from_cudnn, from_keras
from shared.port.layers import (
    Dense,
    Embedding,
    PortError,
    Recurrent,
    Unportable,
    Weightless,
)

MODELS = ("Functional", "Sequential", "Model")  # "Model": Keras <= 2.3's Functional
RECURRENT = ("LSTM", "GRU")
CUDNN = ("CuDNNLSTM", "CuDNNGRU")


def keras_major(version, entries: list) -> int:
    """The major Keras version that wrote a file: its keras_version, else the config's style.

    Keras 3 writes "module" into every layer entry; Keras 2 never did.
    """
    found = re.match(r"\s*(\d+)\.", text(version)) if version is not None else None
    if found:
        return int(found.group(1))
    return 3 if any(isinstance(e, dict) and "module" in e for e in entries) else 2


def lists_layers(model) -> bool:
    """Whether a model config lists its layers (Functional/Sequential), or not (subclassed).

    An empty list counts as none: a model of no layers holds no weights, so the file's
    weights are read by their structure (or, in a legacy .h5, refused) instead of
    making a port of nothing.
    """
    if not isinstance(model, dict) or model.get("class_name") not in MODELS:
        return False
    config = model.get("config")
    found = config.get("layers") if isinstance(config, dict) else config
    return isinstance(found, list) and bool(found)


def entries(path: str, model: dict) -> list[dict]:
    """The layer entries of a model config that ``lists_layers``, each checked to be an object."""
    config = model.get("config")
    found = config if isinstance(config, list) else config["layers"]
    for index, entry in enumerate(found):
        where = f"layer {index} of {brief(model.get('class_name'))} {brief(_name(model))}"
        if not isinstance(entry, dict):
            raise PortError(f"{path}: the model config is not what Keras writes: {where} is a "
                            f"{type(entry).__name__}, not a layer object")
        for key in ("config", "class_name", "name"):
            kinds = dict if key == "config" else str
            if key in entry and not isinstance(entry[key], kinds):
                raise PortError(f"{path}: the model config is not what Keras writes: {where} "
                                f"has a {key!r} that is a {type(entry[key]).__name__}")
    return found


def model_layers(path: str, model, store, handle, version: int) -> list:
    """The port layers of a model config that lists its layers, nested models flattened."""
    layers = []
    for entry, child in store.children(model, handle, entries(path, model)):
        layers.extend(_layer(path, entry, store, child, version))
    names = [layer.name for layer in layers]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise PortError(f"{path}: two layers are named {brief(twice[0])}; port names layers by "
                        "name")
    return layers


def _object(path: str, entry: dict, *keys: str) -> dict:
    """``entry[keys[0]][keys[1]]...``, each an object ({} where absent); PortError otherwise."""
    value = entry
    for key in keys:
        value = value.get(key, {})
        if not isinstance(value, dict):
            raise PortError(f"{path}: the model config is not what Keras writes: layer "
                            f"{brief(_name(entry))} has a {'.'.join(keys)!r} that is a "
                            f"{type(value).__name__}")
    return value


def _layer(path: str, entry: dict, store, handle, version: int) -> list:
    """The port layers of one entry of a model config (several for a nested model)."""
    cls, config, name = str(entry.get("class_name", "?")), entry.get("config", {}), _name(entry)
    what = f"Keras {cls}"
    custom = _custom(entry)
    if cls == "Lambda":
        return [Unportable(name, what, rules.LAMBDA, store.count(handle))]
    if custom:
        return [Unportable(name, what, rules.CUSTOM.format(what=custom), store.count(handle))]
    if cls in MODELS and lists_layers(entry):
        return model_layers(path, entry, store, store.nested(handle), version)
    if cls in RECURRENT + CUDNN:
        return [recurrent_layer(path, name, what, config, [store.arrays(handle, "cell")], version)]
    if cls == "Bidirectional":
        inner = _object(path, entry, "config", "layer")
        inner_cls = inner.get("class_name")
        what = f"Keras Bidirectional({brief(inner_cls, quote=False)})"
        if inner_cls in RECURRENT + CUDNN and not _custom(inner):
            directions = [store.arrays(handle, d) for d in ("forward", "backward")]
            layer = recurrent_layer(path, name, what, _object(path, inner, "config"), directions,
                               version)
            if isinstance(layer, Recurrent) and config.get("merge_mode", "concat") != "concat":
                layer.notes.append(
                    f"Keras merges the two directions by {brief(config.get('merge_mode'))}; the "
                    "port keeps them concatenated [forward, backward]: merge them yourself"
                )
            return [layer]
    if cls == "Dense" or (cls == "TimeDistributed"
                          and _object(path, entry, "config", "layer").get("class_name") == "Dense"):
        dense = config if cls == "Dense" else _object(path, entry, "config", "layer", "config")
        arrays = store.arrays(handle, "own" if cls == "Dense" else "inner")
        what = what if cls == "Dense" else "Keras TimeDistributed(Dense)"
        return [dense_layer(path, name, what, dense, arrays)]
    if cls == "Embedding":
        arrays = store.arrays(handle, "own")
        if len(arrays) != 1 or arrays[0].ndim != 2:
            raise PortError(f"{path}: Embedding {brief(name)} should hold one (V, E) table")
        notes = ["mask_zero=True: id 0 is padding; in PyTorch pack the sequences by length"
                 ] if config.get("mask_zero") else []
        return [Embedding(name, what, "keras", arrays[0], notes)]
    if store.count(handle):
        return [Unportable(name, what, rules.UNKNOWN, store.count(handle))]
    return [Weightless(name, what)]


def recurrent_layer(path, name, what, config, directions, version) -> Recurrent | Unportable:
    """A Keras LSTM, GRU, CuDNNLSTM or CuDNNGRU (``directions``: its arrays per direction)."""
    cell = "lstm" if "LSTM" in what else "gru"
    cudnn = "CuDNN" in what
    units, use_bias = config.get("units"), cudnn or config.get("use_bias", True)
    _check_options(path, name, what, config)
    # Keras 3 always writes reset_after; a Keras 2.0 GRU had no such option and reset before.
    # cuDNN's GRU resets after the product, as PyTorch's does.
    reset_after = cudnn or bool(config.get("reset_after", False)) if cell == "gru" else True
    options = {key: config.get(key, default) for key, default in rules.KERAS_DEFAULTS.items()}
    if cudnn:  # cuDNN's gates are sigmoid/tanh, fixed: the config has no such options
        options.update(activation="tanh", recurrent_activation="sigmoid")
    gates = (options["activation"], options["recurrent_activation"])
    parameters = sum(int(np.size(a)) for arrays in directions for a in arrays)
    if not all(isinstance(gate, str) for gate in gates):
        return Unportable(name, what, rules.CUSTOM.format(what="a serialized activation"),
                          parameters)
    unknown = [gate for gate in gates if version < 3 and gate not in activations.KERAS2]
    if unknown:
        return Unportable(name, what, f"uses activation {brief(unknown[0])}, whose Keras 2 "
                                      "definition port does not know", parameters)
    unknown = [gate for gate in gates if version >= 3 and gate not in activations.KERAS3]
    if unknown:
        return Unportable(name, what, _NOT_KERAS.format(what=brief(unknown[0])), parameters)
    weights, raw, notes = {}, {}, []
    for direction, arrays in zip(("forward", "backward"), directions, strict=False):
        if len(arrays) != (3 if use_bias else 2) or arrays[1].ndim != 2:
            raise PortError(
                f"{path}: {what} {brief(name)} ({direction}) should hold kernel, "
                f"recurrent_kernel{', bias' if use_bias else ''}; found {len(arrays)} arrays"
            )
        raw.update({f"{direction}.{key}": array for key, array in
                    zip(("kernel", "recurrent_kernel", "bias"), arrays, strict=False)})
        if not use_bias:
            size = (4 if cell == "lstm" else 3) * arrays[1].shape[0]  # G*H
            shape = (2, size) if cell == "gru" and reset_after else (size,)
            arrays = [*arrays, np.zeros(shape, np.float32)]
        try:
            convert = from_cudnn if cudnn else from_keras
            weights.update(convert(cell, f"l0.{direction}", *arrays))
        except (ValueError, TypeError) as error:
            raise PortError(f"{path}: {what} {brief(name)} ({direction}): {error}") from None
    kernel, recurrent_kernel = directions[0][:2]
    inputs, hidden = kernel.shape[0], recurrent_kernel.shape[0]
    if units is not None and units != hidden:
        raise PortError(f"{path}: {what} {brief(name)} says units={units} but holds H = "
                        f"{hidden}")
    if not use_bias:
        notes.append("use_bias=False in the source: zero biases written")
    if cudnn:
        notes.append("a cuDNN layer: its weights were read in cuDNN's layout (each gate's "
                     "input block a raw reshape, its recurrent block as stored); sigmoid/tanh "
                     "gates, as cuDNN computes")
    origin = "cudnn" if cudnn else "keras2" if version < 3 else "keras"
    settings = {"keras_options": options, "use_bias": use_bias, "reset": "reset_after=False",
                "keras_version": version}
    return Recurrent(name, what, origin, cell, inputs, hidden, 1, len(directions) == 2, weights,
                     reset_after, raw, settings, notes)


def dense_layer(path, name, what, config, arrays) -> Dense | Unportable:
    """A Keras Dense from its config and arrays [kernel (in, out), bias (out,)?]."""
    use_bias = config.get("use_bias", True)
    if not isinstance(use_bias, bool):
        raise PortError(f"{path}: {what} {brief(name)} says use_bias={brief(use_bias)}; "
                        "expected true or false")
    if len(arrays) != (2 if use_bias else 1) or arrays[0].ndim != 2 or (
            use_bias and arrays[1].shape != arrays[0].shape[1:]):
        raise PortError(f"{path}: {what} {brief(name)} should hold a kernel (in, out)"
                        f"{' and its bias (out,)' if use_bias else ''}; found "
                        f"{', '.join(str(a.shape) for a in arrays) or 'none'}")
    activation = config.get("activation", "linear")
    if activation is not None and activation not in activations.KERAS3:
        why = (_NOT_KERAS.format(what=brief(activation)) if isinstance(activation, str)
               else rules.CUSTOM.format(what="a serialized activation"))
        return Unportable(name, what, why, sum(int(np.size(a)) for a in arrays))
    raw = {"kernel": arrays[0], **({"bias": arrays[1]} if use_bias else {})}
    return Dense(name, what, "keras", np.ascontiguousarray(arrays[0].T),
                 arrays[1] if use_bias else None, raw,
                 None if activation in (None, "linear") else str(activation))


_NOT_KERAS = ("uses the activation {what}, which is not one of keras.activations' own; port "
              "carries only those")


def _check_options(path: str, name: str, what: str, config: dict) -> None:
    """PortError unless a recurrent layer's options are of the types Keras writes."""
    units, use_bias = config.get("units"), config.get("use_bias", True)
    if units is not None and (not isinstance(units, int) or isinstance(units, bool) or units < 1):
        raise PortError(f"{path}: {what} {brief(name)} says units={brief(units)}; expected a "
                        "whole number >= 1")
    for key, value in (("use_bias", use_bias), ("go_backwards", config.get("go_backwards", False))):
        if not isinstance(value, bool):
            raise PortError(f"{path}: {what} {brief(name)} says {key}={brief(value)}; expected "
                            "true or false")


# ---- small helpers, shared with the weight stores and ``keras_impl.load_ported`` ----

def _name(entry: dict) -> str:
    config = entry.get("config")
    named = config.get("name") if isinstance(config, dict) else None
    return str(named or entry.get("name") or "?")


def _custom(entry: dict) -> str | None:
    """``module.Class`` (or the registered name) of a layer not Keras's own, else None."""
    module, registered = entry.get("module"), entry.get("registered_name")
    cls = entry.get("class_name")
    if (module is not None and not str(module).startswith("keras")) or (
        registered is not None and registered != cls
    ):
        return f"{module}.{cls}" if module else str(registered)
    return None


def snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: "InputLayer" -> "input_layer", "LSTM" -> "lstm"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(name: str, used: dict[str, int]) -> str:
    """Keras's ``_get_unique_name``: "lstm", then "lstm_1", "lstm_2", ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
