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

h5py is what reads them (it comes with TensorFlow and Keras).  An HDF5 file can
point outside itself (external links, external or virtual datasets); such files
are refused, like ONNX external data outside SRC's folder.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from typing import ClassVar

import numpy as np

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


def _h5py():
    try:
        import h5py
    except ImportError:
        raise PortError(
            "reading a Keras file needs h5py (it comes with TensorFlow and Keras): pip install h5py"
        ) from None
    return h5py


def read_keras(path: str) -> Source:
    """A Keras 3 ``.keras`` file's layers."""
    h5py = _h5py()
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise PortError(f"{path} is a damaged or truncated .keras archive ({error})") from None
    except KeyError as error:
        raise PortError(f"{path} is not a complete .keras file: {error.args[0]}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PortError(f"{path}: config.json is not valid JSON ({error})") from None
    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except OSError as error:
        raise PortError(f"{path}: model.weights.h5 is not a readable HDF5 file ({error})") from None
    with h5:
        _refuse_links_outside(path, h5, h5py)
        store = _KerasWeights(path, h5)
        layers = _model_layers(path, config, store, store.root)
        tensors, parameters = _count(h5, "layers")
        ignored = _optimizer(h5, "optimizer")
    return Source(path, "keras", "Keras 3 .keras file", layers, tensors, parameters, ignored)


def read_keras_h5(path: str) -> Source:
    """A legacy Keras ``.h5`` model's layers (``model.save("x.h5")``, Keras 2 or 3)."""
    h5py = _h5py()
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise PortError(f"{path} is a damaged or truncated HDF5 file ({error})") from None
    with h5:
        _refuse_links_outside(path, h5, h5py)
        if "model_config" not in h5.attrs:
            raise PortError(
                f"{path} holds weights only (save_weights), no model_config: port needs each "
                "layer's type; save the model itself (model.save)"
            )
        try:
            config = json.loads(_text(h5.attrs["model_config"]))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PortError(f"{path}: model_config is not valid JSON ({error})") from None
        root = h5.get("model_weights", h5)
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

    def children(self, model: dict, handle: str):
        """(entry, handle) for each layer of a model config, by Keras's naming rule."""
        used: dict[str, int] = {}
        for entry in model["config"]["layers"]:
            if model["class_name"] == "Sequential" and entry.get("class_name") == "InputLayer":
                yield entry, None  # Sequential keeps its input out of `layers`: no group
                continue
            key = _unique(_snake_case(entry.get("class_name", "")), used)
            group = f"{handle}layers/{key}"
            stored = self.h5.get(f"{group}/vars")
            name = _name(entry)
            written = None if stored is None else stored.attrs.get("name")
            if written is not None and _text(written) != name:
                raise PortError(
                    f"{self.path}: cannot match layer {name!r} to model.weights.h5: its group "
                    f"{group} belongs to {_text(written)!r}"
                )
            yield entry, group

    def nested(self, handle: str) -> str:
        return f"{handle}/"

    def arrays(self, handle: str | None, part: str) -> list[np.ndarray]:
        group = None if handle is None else self.h5.get(f"{handle}/{self.PARTS[part]}")
        if group is None:
            return []
        keys = sorted((key for key in group if key.isdigit()), key=int)
        return [float32(f"{self.path}: {group.name}/{key}", group[key][()]) for key in keys]

    def has_weights(self, handle: str | None) -> bool:
        group = None if handle is None else self.h5.get(handle)
        if group is None:
            return False
        found = []
        group.visititems(lambda _, item: found.append(1) if hasattr(item, "shape") else None)
        return bool(found)


class _LegacyWeights:
    """model_weights of a legacy .h5; a layer's handle is its list of (weight name, dataset)."""

    root = None

    def __init__(self, path, root):
        self.path, self.root_group = path, root

    def children(self, model: dict, handle):
        for entry in model["config"]["layers"]:
            name = _name(entry)
            if handle is not None:  # a layer of a nested model: its weights carry its name
                yield entry, [(w, d) for w, d in handle if name in w.split("/")[:-1]]
            elif name in self.root_group:
                group = self.root_group[name]
                names = [_text(w) for w in group.attrs.get("weight_names", [])]
                yield entry, [(w, group[w]) for w in names]
            else:
                yield entry, []

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

def _model_layers(path: str, model: dict, store, handle) -> list:
    if not isinstance(model, dict) or model.get("class_name") not in MODELS:
        kind = model.get("class_name") if isinstance(model, dict) else type(model).__name__
        raise PortError(
            f"{path}: the model is a {kind!r}, not a Functional or Sequential model, so its "
            "config does not list its layers (a subclassed keras.Model); port reads Functional "
            "and Sequential models"
        )
    layers = []
    for entry, child in store.children(model, handle):
        layers.extend(_layer(path, entry, store, child))
    names = [layer.name for layer in layers]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise PortError(f"{path}: two layers are named {twice[0]!r}; port names layers by name")
    return layers


def _layer(path: str, entry: dict, store, handle) -> list:
    """The port layers of one entry of a model config (several for a nested model)."""
    cls, config, name = entry.get("class_name", "?"), entry.get("config", {}), _name(entry)
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
    if cls == "Bidirectional":
        inner = config.get("layer", {})
        what = f"Keras Bidirectional({inner.get('class_name')})"
        if inner.get("class_name") in RECURRENT and not _custom(inner):
            directions = [store.arrays(handle, d) for d in ("forward", "backward")]
            layer = _recurrent(path, name, what, inner.get("config", {}), directions)
            if isinstance(layer, Recurrent) and config.get("merge_mode", "concat") != "concat":
                layer.notes.append(
                    f"Keras merges the two directions by {config.get('merge_mode')!r}; the port "
                    "keeps them concatenated [forward, backward]: merge them yourself"
                )
            return [layer]
    if cls == "Dense" or (cls == "TimeDistributed"
                          and config.get("layer", {}).get("class_name") == "Dense"):
        dense = config if cls == "Dense" else config["layer"].get("config", {})
        arrays = store.arrays(handle, "own" if cls == "Dense" else "inner")
        what = what if cls == "Dense" else "Keras TimeDistributed(Dense)"
        return [_dense(path, name, what, dense, arrays)]
    if cls == "Embedding":
        arrays = store.arrays(handle, "own")
        if len(arrays) != 1 or arrays[0].ndim != 2:
            raise PortError(f"{path}: Embedding {name!r} should hold one (V, E) table")
        notes = ["mask_zero=True: id 0 is padding; in PyTorch pack the sequences by length"
                 ] if config.get("mask_zero") else []
        return [Embedding(name, what, "keras", arrays[0], notes)]
    if store.has_weights(handle):
        return [Unportable(name, what, rules.UNKNOWN)]
    return [Weightless(name, what)]


def _recurrent(path, name, what, config, directions) -> Recurrent | Unportable:
    """A Keras LSTM or GRU (``directions``: [[kernel, recurrent_kernel, bias?]] per direction)."""
    cell = "lstm" if "LSTM" in what else "gru"
    units, use_bias = config.get("units"), config.get("use_bias", True)
    # Keras 3 always writes reset_after; a Keras 2.0 GRU had no such option and reset before.
    reset_after = bool(config.get("reset_after", False)) if cell == "gru" else True
    options = {key: config.get(key, default) for key, default in rules.KERAS_DEFAULTS.items()}
    if not all(isinstance(options[key], str) for key in ("activation", "recurrent_activation")):
        return Unportable(name, what, rules.CUSTOM.format(what="a serialized activation"))
    weights, raw, notes = {}, {}, []
    for direction, arrays in zip(("forward", "backward"), directions, strict=False):
        if len(arrays) != (3 if use_bias else 2):
            raise PortError(
                f"{path}: {what} {name!r} ({direction}) should hold kernel, recurrent_kernel"
                f"{', bias' if use_bias else ''}; found {len(arrays)} arrays"
            )
        raw.update({f"{direction}.{key}": array for key, array in
                    zip(("kernel", "recurrent_kernel", "bias"), arrays, strict=False)})
        if not use_bias:
            gates = 4 if cell == "lstm" else 3
            shape = (2, gates * units) if cell == "gru" and reset_after else (gates * units,)
            arrays = [*arrays, np.zeros(shape, np.float32)]
        try:
            weights.update(from_keras(cell, f"l0.{direction}", *arrays))
        except ValueError as error:
            raise PortError(f"{path}: {what} {name!r} ({direction}): {error}") from None
    kernel, recurrent_kernel = directions[0][:2]
    inputs, hidden = kernel.shape[0], recurrent_kernel.shape[0]
    if units is not None and units != hidden:
        raise PortError(f"{path}: {what} {name!r} says units={units} but holds H = {hidden}")
    if not use_bias:
        notes.append("use_bias=False in the source: zero biases written")
    settings = {"keras_options": options, "use_bias": use_bias, "reset": "reset_after=False"}
    return Recurrent(name, what, "keras", cell, inputs, hidden, 1, len(directions) == 2, weights,
                     reset_after, raw, settings, notes)


def _dense(path, name, what, config, arrays) -> Dense:
    use_bias = config.get("use_bias", True)
    if len(arrays) != (2 if use_bias else 1) or arrays[0].ndim != 2:
        raise PortError(f"{path}: {what} {name!r} should hold a kernel (in, out) and its bias")
    activation = config.get("activation", "linear")
    raw = {"kernel": arrays[0], **({"bias": arrays[1]} if use_bias else {})}
    return Dense(name, what, "keras", np.ascontiguousarray(arrays[0].T),
                 arrays[1] if use_bias else None, raw,
                 None if activation in (None, "linear") else str(activation))


# ---- small helpers ----

def _name(entry: dict) -> str:
    return str(entry.get("config", {}).get("name") or entry.get("name") or "?")


def _custom(entry: dict) -> str | None:
    """``module.Class`` (or the registered name) of a layer not Keras's own, else None."""
    module, registered = entry.get("module"), entry.get("registered_name")
    cls = entry.get("class_name")
    if (module is not None and not str(module).startswith("keras")) or (
        registered is not None and registered != cls
    ):
        return f"{module}.{cls}" if module else str(registered)
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


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _refuse_links_outside(path: str, group, h5py) -> None:
    """PortError if any link or dataset of the HDF5 file reaches outside it."""
    for key in group:
        link = group.get(key, getlink=True)
        where = f"{group.name.rstrip('/')}/{key}"
        if isinstance(link, h5py.ExternalLink):
            raise PortError(
                f"{path}: {where} is an external link to {link.filename}; port reads only what "
                "is inside SRC"
            )
        if isinstance(link, h5py.SoftLink):
            continue  # inside the file; not followed, so no cycle
        item = group[key]
        if isinstance(item, h5py.Group):
            _refuse_links_outside(path, item, h5py)
        elif item.external or item.is_virtual:
            raise PortError(
                f"{path}: dataset {where} keeps its data in another file; port reads only what "
                "is inside SRC"
            )


def _datasets(h5, name: str) -> list:
    found = []
    if name in h5:
        h5[name].visititems(lambda _, item: found.append(item) if hasattr(item, "shape") else None)
    return found


def _count(h5, name: str) -> tuple[int, int]:
    datasets = _datasets(h5, name)
    return len(datasets), sum(int(np.prod(d.shape)) for d in datasets)


def _optimizer(h5, name: str) -> list[str]:
    datasets = _datasets(h5, name)
    return [f"optimizer state: {len(datasets)} tensors (not weights)"] if datasets else []
