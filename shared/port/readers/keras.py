"""Keras models, Keras 3 ``.keras`` and legacy ``.h5``, read without deserialising them.

Loading a Keras model rebuilds its layers from their config, and a config can
name any class or carry a ``Lambda``'s bytecode.  Port never does that (and so
never calls ``keras.saving.load_model``): it reads the config as JSON, which only
says what each layer is, and the weights with h5py, as arrays.  Nothing in the
file runs; a ``Lambda`` layer or a custom class is refused by name.

Where the weights are:

    .keras (a zip)        config.json: {"class_name": "Functional" | "Sequential",
                                        "config": {"layers": [...]}}
                          model.weights.h5: layers/{class, snake_case, _1, _2 ...}/
                            vars/0..           a Dense's kernel, bias; an Embedding's table
                            cell/vars/0..      an LSTM's or GRU's kernel, recurrent_kernel, bias
                            forward_layer/cell/vars, backward_layer/cell/vars   Bidirectional
                            layer/vars         TimeDistributed
                            layers/...         a nested model
    legacy .h5            attrs["model_config"]: the same JSON;  model_weights/{layer name}/
                          with attrs["weight_names"], each a dataset path in that group

In a .keras file a layer's group is named after its class, in the order of the
model's layers (Keras's own rule, ``saving_lib._save_container_state``: a
Sequential model leaves its InputLayer out); Keras 3.x also writes the layer's
name in ``vars.attrs["name"]``, and where it does the two must agree.

Both are read through ``shared.files``: the zip's members checked before a
byte is inflated (``archive.open_zip``), the config parsed as strict JSON
(depth and number limits), and the HDF5 file walked by libhdf5 in a confined
child process (``hdf5.read_hdf5``: a time and a memory limit, every link
inside the file, every declared size checked), so a crafted file can neither
hang nor exhaust the process.  The config is a stranger's JSON too: each value
is checked to be of the type Keras writes (an object, a list, a string) before
it is used, and a layer's activation must be one of Keras's own names.
"""

from __future__ import annotations

import math
import re
from typing import ClassVar

import numpy as np

from shared.files.archive import open_zip
from shared.files.hdf5 import Dataset, Group, read_hdf5
from shared.files.limits import MAX_JSON_BYTES
from shared.files.safe import brief, loads
from shared.port import rules
from shared.port.canonical import from_keras
from shared.port.layers import (
    Dense,
    Embedding,
    PortError,
    Recurrent,
    Source,
    Unportable,
    Weightless,
    float32,
)

MODELS = ("Functional", "Sequential")
RECURRENT = ("LSTM", "GRU")
# keras.activations' own names (Keras 2 and 3): anything else names code port never runs.
ACTIVATIONS = frozenset({
    "linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "relu6", "leaky_relu", "elu",
    "selu", "celu", "gelu", "glu", "silu", "swish", "hard_silu", "hard_swish", "mish",
    "softmax", "log_softmax", "softplus", "softsign", "exponential", "log_sigmoid",
    "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "squareplus", "sparse_plus",
    "sparsemax", "threshold",
})


def read_keras(path: str) -> Source:
    """A Keras 3 ``.keras`` file's layers."""
    with open_zip(path, "Keras 3 .keras file") as archive:
        for name in ("config.json", "model.weights.h5"):
            if name not in archive.names:
                raise PortError(f"{path} is not a complete .keras file: it holds no {name}")
        text = archive.read("config.json", MAX_JSON_BYTES)
        weights = archive.read("model.weights.h5")
    config = loads(text, f"{path}: config.json", MAX_JSON_BYTES)
    h5 = read_hdf5(weights, "Keras weights file", f"{path}: model.weights.h5")
    store = _KerasWeights(path, h5)
    layers = _model_layers(path, config, store, store.root)
    tensors, parameters = _count(h5, "layers")
    ignored = _optimizer(h5, "optimizer")
    return Source(path, "keras", "Keras 3 .keras file", layers, tensors, parameters, ignored)


def read_keras_h5(path: str) -> Source:
    """A legacy Keras ``.h5`` model's layers (``model.save("x.h5")``, Keras 2 or 3)."""
    h5 = read_hdf5(path, "legacy Keras .h5 model")
    if "model_config" not in h5.attrs:
        raise PortError(
            f"{path} holds weights only (save_weights), no model_config: port needs each "
            "layer's type; save the model itself (model.save)"
        )
    text = h5.attrs["model_config"]
    if not isinstance(text, str):
        raise PortError(f"{path}: the model_config attribute should be a JSON text; it holds "
                        f"{brief(text)}")
    config = loads(text, f"{path}: model_config", MAX_JSON_BYTES)
    root = h5.get("model_weights", h5)
    if not isinstance(root, Group):
        raise PortError(f"{path}: model_weights should be a group of layers; it is an array")
    store = _LegacyWeights(path, root)
    layers = _model_layers(path, config, store, None)
    tensors, parameters = _count(h5, "model_weights")
    ignored = _optimizer(h5, "optimizer_weights")
    return Source(path, "keras-h5", "legacy Keras .h5 model", layers, tensors, parameters, ignored)


# ---- where each layer's arrays are ----

class _KerasWeights:
    """model.weights.h5 of a .keras file; a layer's handle is its group's path."""

    PARTS: ClassVar = {"own": "vars", "cell": "cell/vars", "forward": "forward_layer/cell/vars",
             "backward": "backward_layer/cell/vars", "inner": "layer/vars"}
    root = ""

    def __init__(self, path, h5):
        self.path, self.h5 = path, h5

    def children(self, model: dict, entries: list, handle: str):
        """(entry, handle) for each layer of a model config, by Keras's naming rule."""
        used: dict[str, int] = {}
        for entry in entries:
            if model["class_name"] == "Sequential" and entry["class_name"] == "InputLayer":
                yield entry, None  # Sequential keeps its input out of `layers`: no group
                continue
            key = _unique(_snake_case(entry["class_name"]), used)
            group = f"{handle}layers/{key}"
            stored = self.h5.get(f"{group}/vars")
            name = _name(entry)
            written = None if stored is None else stored.attrs.get("name")
            if written is not None and written != name:
                raise PortError(
                    f"{self.path}: cannot match layer {brief(name)} to model.weights.h5: its "
                    f"group {brief(group)} belongs to {brief(written)}"
                )
            yield entry, group

    def nested(self, handle: str) -> str:
        return f"{handle}/"

    def arrays(self, handle: str | None, part: str) -> list[np.ndarray]:
        group = None if handle is None else self.h5.get(f"{handle}/{self.PARTS[part]}")
        if not isinstance(group, Group):
            return []
        keys = sorted((key for key in group if key.isascii() and key.isdigit()), key=int)
        return [float32(f"{self.path}: {group.name}/{key}", _array(self.path, group[key]))
                for key in keys]

    def has_weights(self, handle: str | None) -> bool:
        group = None if handle is None else self.h5.get(handle)
        if not isinstance(group, Group):
            return False
        return group.visititems(lambda _, item: True if isinstance(item, Dataset) else None) \
            is not None


class _LegacyWeights:
    """model_weights of a legacy .h5; a layer's handle is its list of (weight name, dataset)."""

    root = None

    def __init__(self, path, root):
        self.path, self.root_group = path, root

    def children(self, model: dict, entries: list, handle):
        for entry in entries:
            name = _name(entry)
            if handle is not None:  # a layer of a nested model: its weights carry its name
                yield entry, [(w, d) for w, d in handle if name in w.split("/")[:-1]]
            elif isinstance(self.root_group.get(name), Group):
                yield entry, self._weights(self.root_group[name])
            else:
                yield entry, []

    def _weights(self, group: Group) -> list:
        names = group.attrs.get("weight_names", [])
        if isinstance(names, np.ndarray) and names.size == 0:
            names = []
        if not isinstance(names, list):
            raise PortError(f"{self.path}: {group.name} says its weight_names are "
                            f"{brief(names)}; expected a list of names")
        found = []
        for weight in names:
            dataset = group.get(weight)
            if not isinstance(dataset, Dataset):
                raise PortError(f"{self.path}: {group.name} lists the weight {brief(weight)}, "
                                "which is not an array in the file")
            found.append((weight, dataset))
        return found

    def nested(self, handle):
        return handle

    def arrays(self, handle, part: str) -> list[np.ndarray]:
        chosen = handle
        if part in ("forward", "backward"):
            chosen = [(w, d) for w, d in handle if any(p.startswith(part) for p in w.split("/"))]
            if not chosen:  # no direction in the names: Keras lists forward, then backward
                half = len(handle) // 2
                chosen = handle[:half] if part == "forward" else handle[half:]
        return [float32(f"{self.path}: {d.name}", d[()]) for _, d in chosen]

    def has_weights(self, handle) -> bool:
        return bool(handle)


# ---- what each layer is ----

def _model_layers(path: str, model, store, handle) -> list:
    model = _object(path, model, "the model config")
    kind = model.get("class_name")
    if kind not in MODELS:
        raise PortError(
            f"{path}: the model is a {brief(kind)}, not a Functional or Sequential model, so "
            "its config does not list its layers (a subclassed keras.Model); port reads "
            "Functional and Sequential models"
        )
    config = _object(path, model.get("config"), f"the config of model {brief(_name(model))}")
    entries = _list(path, config.get("layers"), f"the layers of model {brief(_name(model))}")
    for index, entry in enumerate(entries):
        where = f"layer {index} of model {brief(_name(model))}"
        _object(path, entry, where)
        if not isinstance(entry.get("class_name"), str):
            raise PortError(f"{path}: {where} has the class_name {brief(entry.get('class_name'))}"
                            "; expected a string such as 'LSTM'")
    layers = []
    for entry, child in store.children(model, entries, handle):
        layers.extend(_layer(path, entry, store, child))
    names = [layer.name for layer in layers]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise PortError(f"{path}: two layers are named {brief(twice[0])}; port names layers by "
                        "name")
    return layers


def _layer(path: str, entry: dict, store, handle) -> list:
    """The port layers of one entry of a model config (several for a nested model)."""
    cls, name = entry["class_name"], _name(entry)
    config = _object(path, entry.get("config", {}), f"the config of layer {brief(name)}")
    what = f"Keras {cls}"
    if cls == "Lambda":
        return [Unportable(name, what, rules.LAMBDA)]
    custom = _custom(entry)
    if custom:
        return [Unportable(name, what, rules.CUSTOM.format(what=custom))]
    if cls in MODELS:
        return _model_layers(path, entry, store, store.nested(handle))
    if cls in RECURRENT:
        return [_recurrent(path, name, what, config, [store.arrays(handle, "cell")])]
    if cls in ("Bidirectional", "TimeDistributed"):
        inner = _object(path, config.get("layer"), f"the layer that {brief(name)} wraps")
        inner_cls = inner.get("class_name")
        inner_config = _object(path, inner.get("config", {}),
                               f"the config of the layer that {brief(name)} wraps")
        what = f"Keras {cls}({brief(inner_cls, quote=False)})"
        if cls == "Bidirectional" and inner_cls in RECURRENT and not _custom(inner):
            directions = [store.arrays(handle, d) for d in ("forward", "backward")]
            layer = _recurrent(path, name, what, inner_config, directions)
            merge = config.get("merge_mode", "concat")
            if isinstance(layer, Recurrent) and merge != "concat":
                layer.notes.append(
                    f"Keras merges the two directions by {brief(merge)}; the port keeps them "
                    "concatenated [forward, backward]: merge them yourself"
                )
            return [layer]
        if cls == "TimeDistributed" and inner_cls == "Dense" and not _custom(inner):
            return [_dense(path, name, what, inner_config, store.arrays(handle, "inner"))]
    if cls == "Dense":
        return [_dense(path, name, what, config, store.arrays(handle, "own"))]
    if cls == "Embedding":
        arrays = store.arrays(handle, "own")
        if len(arrays) != 1 or arrays[0].ndim != 2:
            raise PortError(f"{path}: Embedding {brief(name)} should hold one (V, E) table")
        notes = ["mask_zero=True: id 0 is padding; in PyTorch pack the sequences by length"
                 ] if config.get("mask_zero") is True else []
        return [Embedding(name, what, "keras", arrays[0], notes)]
    if store.has_weights(handle):
        return [Unportable(name, what, rules.UNKNOWN)]
    return [Weightless(name, what)]


def _recurrent(path, name, what, config, directions) -> Recurrent | Unportable:
    """A Keras LSTM or GRU (``directions``: [[kernel, recurrent_kernel, bias?]] per direction)."""
    cell = "lstm" if "LSTM" in what else "gru"
    units, use_bias = config.get("units"), config.get("use_bias", True)
    if units is not None and (not isinstance(units, int) or isinstance(units, bool) or units < 1):
        raise PortError(f"{path}: {what} {brief(name)} says units={brief(units)}; expected a "
                        "whole number >= 1")
    if not isinstance(use_bias, bool):
        raise PortError(f"{path}: {what} {brief(name)} says use_bias={brief(use_bias)}; "
                        "expected true or false")
    # Keras 3 always writes reset_after; a Keras 2.0 GRU had no such option and reset before.
    reset_after = config.get("reset_after", False) is True if cell == "gru" else True
    options = {key: config.get(key, default) for key, default in rules.KERAS_DEFAULTS.items()}
    for key in ("activation", "recurrent_activation"):
        why = _activation(options[key])
        if why:
            return Unportable(name, what, why)
    if not isinstance(options["go_backwards"], bool):
        raise PortError(f"{path}: {what} {brief(name)} says go_backwards="
                        f"{brief(options['go_backwards'])}; expected true or false")
    weights, raw, notes = {}, {}, []
    for direction, arrays in zip(("forward", "backward"), directions, strict=False):
        if len(arrays) != (3 if use_bias else 2) or any(a.ndim not in (1, 2) for a in arrays):
            raise PortError(
                f"{path}: {what} {brief(name)} ({direction}) should hold kernel, "
                f"recurrent_kernel{', bias' if use_bias else ''}; found {len(arrays)} arrays of "
                f"shapes {', '.join(str(a.shape) for a in arrays) or 'none'}"
            )
        raw.update({f"{direction}.{key}": array for key, array in
                    zip(("kernel", "recurrent_kernel", "bias"), arrays, strict=False)})
        if arrays[0].ndim != 2 or arrays[1].ndim != 2:
            raise PortError(f"{path}: {what} {brief(name)} ({direction}): kernel and "
                            "recurrent_kernel should be 2-D")
        if not use_bias:
            gates = 4 if cell == "lstm" else 3
            hidden = arrays[1].shape[0]
            shape = (2, gates * hidden) if cell == "gru" and reset_after else (gates * hidden,)
            arrays = [*arrays, np.zeros(shape, np.float32)]
        try:
            weights.update(from_keras(cell, f"l0.{direction}", *arrays))
        except ValueError as error:
            raise PortError(f"{path}: {what} {brief(name)} ({direction}): {error}") from None
    kernel, recurrent_kernel = directions[0][:2]
    inputs, hidden = kernel.shape[0], recurrent_kernel.shape[0]
    if units is not None and units != hidden:
        raise PortError(f"{path}: {what} {brief(name)} says units={units} but holds H = {hidden}")
    if not use_bias:
        notes.append("use_bias=False in the source: zero biases written")
    settings = {"keras_options": options, "use_bias": use_bias, "reset": "reset_after=False"}
    return Recurrent(name, what, "keras", cell, inputs, hidden, 1, len(directions) == 2, weights,
                     reset_after, raw, settings, notes)


def _dense(path, name, what, config, arrays) -> Dense | Unportable:
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
    why = _activation(activation)
    if why:
        return Unportable(name, what, why)
    raw = {"kernel": arrays[0], **({"bias": arrays[1]} if use_bias else {})}
    return Dense(name, what, "keras", np.ascontiguousarray(arrays[0].T),
                 arrays[1] if use_bias else None, raw,
                 None if activation in (None, "linear") else activation)


# ---- small helpers ----

def _object(path: str, value, what: str) -> dict:
    """``value`` if it is a JSON object, else PortError naming ``what`` and what came."""
    if not isinstance(value, dict):
        raise PortError(f"{path}: {what} should be a JSON object; it is {_json_kind(value)}")
    return value


def _list(path: str, value, what: str) -> list:
    if not isinstance(value, list):
        raise PortError(f"{path}: {what} should be a JSON list; it is {_json_kind(value)}")
    return value


def _json_kind(value) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return f"{kinds.get(type(value), type(value).__name__)} ({brief(value)})"


def _activation(value) -> str | None:
    """Why ``value`` is no activation port carries, or None when it is one of Keras's own."""
    if value is None or value in ACTIVATIONS:
        return None
    if isinstance(value, str):
        return (f"uses the activation {brief(value)}, which is not one of keras.activations' "
                "own; port carries only those")
    return rules.CUSTOM.format(what="a serialized activation")


def _name(entry: dict) -> str:
    config = entry.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    name = name or entry.get("name")
    return name if isinstance(name, str) and name else "?"


def _custom(entry: dict) -> str | None:
    """``module.Class`` (or the registered name) of a layer not Keras's own, else None."""
    module, registered = entry.get("module"), entry.get("registered_name")
    cls = entry.get("class_name")
    if (module is not None and not str(module).startswith("keras")) or (
        registered is not None and registered != cls
    ):
        return brief(f"{module}.{cls}" if module else registered, quote=False)
    return None


def _snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: "InputLayer" -> "input_layer", "LSTM" -> "lstm"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's ``_get_unique_name``: "lstm", then "lstm_1", "lstm_2", ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _array(path: str, item) -> np.ndarray:
    if not isinstance(item, Dataset):
        raise PortError(f"{path}: {item.name} should be an array; it is a group")
    return item[()]


def _datasets(h5, name: str) -> list:
    found = []
    group = h5.get(name)
    if isinstance(group, Group):
        group.visititems(lambda _, item: found.append(item) if isinstance(item, Dataset) else None)
    return found


def _count(h5, name: str) -> tuple[int, int]:
    datasets = _datasets(h5, name)
    return len(datasets), sum(math.prod(d.shape) for d in datasets)


def _optimizer(h5, name: str) -> list[str]:
    datasets = _datasets(h5, name)
    return [f"optimizer state: {len(datasets)} tensors (not weights)"] if datasets else []
