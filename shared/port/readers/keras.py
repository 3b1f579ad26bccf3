"""Keras models, Keras 3 ``.keras``, legacy ``.h5`` and ``.weights.h5``, read without
deserialising them.

Loading a Keras model rebuilds its layers from their config, and a config can
name any class or carry a ``Lambda``'s bytecode.  Port never does that (and so
never calls ``keras.saving.load_model``): it reads the config as JSON, which only
says what each layer is (``readers.keras_config``), and the weights with h5py, as
arrays.  Nothing in the file runs; a ``Lambda`` layer or a custom class is refused
by name.

Where the weights are:

    .keras (a zip)        config.json: {"class_name": "Functional" | "Sequential",
                                        "config": {"layers": [...]}}
                          metadata.json: {"keras_version": "3.x"}
                          model.weights.h5: layers/{class, snake_case, _1, _2 ...}/
                            vars/0..           a Dense's kernel, bias; an Embedding's table
                            cell/vars/0..      an LSTM's or GRU's kernel, recurrent_kernel, bias
                            forward_layer/cell/vars, backward_layer/cell/vars   Bidirectional
                            layer/vars         TimeDistributed
                            layers/...         a nested model
    legacy .h5            attrs["model_config"]: the same JSON (Keras <= 2.3: "Model");
                          attrs["keras_version"]; model_weights/{layer name}/ with
                          attrs["weight_names"] (or weight_names0, weight_names1, ... when
                          Keras 2 split a long list), each a dataset path in that group
    .weights.h5           model.weights.h5's tree alone (``save_weights`` in Keras 3)

In a .keras file a layer's group is named after its class, in the order of the
model's layers (Keras's own rule, ``saving_lib._save_container_state``: a
Sequential model leaves its InputLayer out); Keras 3.x also writes the layer's
name in ``vars.attrs["name"]``, and where it does the two must agree.

A subclassed model's config lists no layers: its weights are then read by their
saved structure (``readers.keras_structure``), from a .keras or a .weights.h5.
A Keras 2 ``save_weights`` .h5 holds neither a config nor a structure port can
trust (the activations are nowhere, and Keras 2's default recurrent activation
changed in 2.3): it is refused with what to do instead.

The Keras version that wrote the file decides the activations' meaning
(``shared.port.activations``): Keras 2's ``hard_sigmoid`` is not Keras 3's.

Both are read through ``shared.files``: the zip's members checked before a
byte is inflated (``archive.open_zip``), the JSON parsed strictly (depth and
number limits), and the HDF5 file walked by libhdf5 (h5py) in a confined child
process (``hdf5.read_hdf5``: a time and a memory limit, every link inside the
file, each object once, every declared size checked), so a crafted file can
neither hang, exhaust nor crash the process; the readers get an in-memory tree
that reads like h5py's.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from shared.files.archive import open_zip
from shared.files.hdf5 import Dataset, Group, read_hdf5
from shared.files.limits import MAX_JSON_BYTES
from shared.files.safe import FileRefusedError, brief, loads
from shared.port.layers import PortError, Source, float32
from shared.port.readers.keras_config import (
    MODELS,
    _name,
    entries,
    keras_major,
    lists_layers,
    model_layers,
    snake_case,
    text,
    unique_name,
)
from shared.port.readers.keras_structure import structure_layers


def read_keras(path: str, linear: tuple[str, ...] = ()) -> Source:
    """A Keras 3 ``.keras`` file's layers; ``linear``: for a subclassed model, layers whose
    lone 2-D array is a bias-free Dense, not an Embedding."""
    with open_zip(path, "Keras 3 .keras file") as archive:
        for name in ("config.json", "model.weights.h5"):
            if name not in archive.names:
                raise PortError(f"{path} is not a complete .keras file: it holds no {name}")
        config_text = archive.read("config.json", MAX_JSON_BYTES)
        weights = archive.read("model.weights.h5")
        metadata = (archive.read("metadata.json", MAX_JSON_BYTES)
                    if "metadata.json" in archive.names else b"{}")
    config = loads(config_text, f"{path}: config.json", MAX_JSON_BYTES)
    h5 = read_hdf5(weights, "Keras weights file", f"{path}: model.weights.h5")
    version = keras_major(_version(path, metadata), [{"module": None}])  # none said: Keras 3's
    ignored = _optimizer(h5, "optimizer")
    if not lists_layers(config):
        return _by_structure(path, "keras", config, h5, version, linear, ignored)
    if linear:
        raise PortError(_LINEAR.format(path=path))
    store = _KerasWeights(path, h5)
    layers = model_layers(path, config, store, store.root, version)
    tensors, parameters = _count(h5, "layers")
    return Source(path, "keras", "Keras 3 .keras file", layers, tensors, parameters, ignored)


def read_keras_h5(path: str, linear: tuple[str, ...] = ()) -> Source:
    """A legacy Keras ``.h5`` model's layers (``model.save("x.h5")``, Keras 2 or 3), or a Keras
    3 ``.weights.h5``'s (read by structure; ``linear`` as in ``read_keras``)."""
    h5 = read_hdf5(path, "legacy Keras .h5 model")
    if "model_config" not in h5.attrs:
        if "layer_names" in h5.attrs or "layer_names0" in h5.attrs:
            raise PortError(_KERAS2_WEIGHTS.format(path=path))
        return _by_structure(path, "keras-h5", None, h5, 3, linear, _optimizer(h5, "optimizer"))
    stored = h5.attrs["model_config"]
    if not isinstance(stored, str):
        raise PortError(f"{path}: the model_config attribute should be a JSON text; it holds "
                        f"{brief(stored)}")
    config = loads(stored, f"{path}: model_config", MAX_JSON_BYTES)
    if not lists_layers(config):
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        if kind in MODELS:  # a model that lists its layers, but not as a list of them
            raise PortError(f"{path}: the config of its {brief(kind)} model should list its "
                            "layers (a non-empty JSON list); it does not: the file is damaged "
                            "or was not written by Keras")
        raise PortError(
            f"{path}: the model is a {brief(kind)} saved in the legacy .h5 format, whose config "
            "does not list its layers (a subclassed keras.Model); save it with "
            "model.save('model.keras') or model.save_weights('model.weights.h5'), which "
            "port reads by the weights' structure"
        )
    if linear:
        raise PortError(_LINEAR.format(path=path))
    written_by = h5.attrs.get("keras_version")
    version = keras_major(written_by, entries(path, config))
    root = h5.get("model_weights", h5)
    if not isinstance(root, Group):
        raise PortError(f"{path}: model_weights should be a group of layers; it is an array")
    store = _LegacyWeights(path, root)
    layers = model_layers(path, config, store, None, version)
    tensors, parameters = _count(h5, "model_weights")
    ignored = _optimizer(h5, "optimizer_weights")
    description = ("legacy Keras .h5 model" if written_by is None
                   else f"legacy Keras .h5 model, Keras {brief(text(written_by), 40, False)}")
    return Source(path, "keras-h5", description, layers, tensors, parameters, ignored)


_LINEAR = ("--linear names layers read by their structure (a PyTorch state_dict, a subclassed "
           "Keras model, a TF2 checkpoint); {path}'s config says what each layer is")
_KERAS2_WEIGHTS = (
    "{path} holds weights only (Keras 2 save_weights): no model config, so nothing says each "
    "layer's type or activations (a Keras 2 LSTM's recurrent activation was hard_sigmoid by "
    "default until 2.3); in Keras 2, load them into the model and save it whole with "
    "model.save('model.h5'), or, for a subclassed tf.keras model, save_weights('ckpt') "
    "without .h5: a TF checkpoint, which port reads by its structure"
)


def _version(path: str, metadata: bytes):
    """The keras_version a .keras file's metadata.json states, or None (it is optional)."""
    try:
        stated = loads(metadata, f"{path}: metadata.json", MAX_JSON_BYTES)
    except FileRefusedError:
        return None
    return stated.get("keras_version") if isinstance(stated, dict) else None


def _by_structure(path, kind, config, h5, version, linear, ignored) -> Source:
    """A subclassed model's layers (or a .weights.h5's), read by their saved structure."""
    cls = config.get("class_name") if isinstance(config, dict) else None
    layers, about = structure_layers(path, h5, version, linear, cls)
    if not layers:
        raise PortError(f"{path} is an HDF5 file with neither a Keras model config nor a Keras "
                        "3 weights tree (no layer groups holding vars/0, vars/1, ...)")
    (tensors, parameters), (slots, slot_numbers) = _count(h5, None), _count(h5, "optimizer")
    tensors, parameters = tensors - slots, parameters - slot_numbers
    description = ("Keras 3 .keras file, a subclassed model" if kind == "keras"
                   else "Keras 3 .weights.h5 (save_weights)")
    return Source(path, kind, description, layers, tensors, parameters, ignored, about=about)


# ---- where each layer's arrays are ----

class _KerasWeights:
    """model.weights.h5 of a .keras file; a layer's handle is its group's path."""

    PARTS: ClassVar = {"own": "vars", "cell": "cell/vars", "forward": "forward_layer/cell/vars",
             "backward": "backward_layer/cell/vars", "inner": "layer/vars"}
    root = ""

    def __init__(self, path, h5):
        self.path, self.h5 = path, h5

    def children(self, model: dict, handle: str, layers: list):
        """(entry, handle) for each layer of a model config, by Keras's naming rule."""
        used: dict[str, int] = {}
        for entry in layers:
            if model["class_name"] == "Sequential" and entry.get("class_name") == "InputLayer":
                yield entry, None  # Sequential keeps its input out of `layers`: no group
                continue
            key = unique_name(snake_case(str(entry.get("class_name", ""))), used)
            group = f"{handle}layers/{key}"
            stored = self.h5.get(f"{group}/vars")
            name = _name(entry)
            written = None if stored is None else stored.attrs.get("name")
            if written is not None and text(written) != name:
                raise PortError(
                    f"{self.path}: cannot match layer {brief(name)} to model.weights.h5: its "
                    f"group {brief(group)} belongs to {brief(text(written))}"
                )
            yield entry, group

    def nested(self, handle: str) -> str:
        return f"{handle}/"

    def arrays(self, handle: str | None, part: str) -> list[np.ndarray]:
        group = None if handle is None else self.h5.get(f"{handle}/{self.PARTS[part]}")
        if group is None or not hasattr(group, "keys"):
            return []
        keys = sorted((key for key in group if key.isascii() and key.isdigit()), key=int)
        return [float32(f"{self.path}: {group.name}/{key}", _array(self.path, group[key]))
                for key in keys]

    def count(self, handle: str | None) -> int:
        """How many numbers the layer's group holds (0: no weights)."""
        group = None if handle is None else self.h5.get(handle)
        return 0 if group is None else sum(math.prod(d.shape) for d in _datasets(group, None))


class _LegacyWeights:
    """model_weights of a legacy .h5; a layer's handle is its list of (weight name, dataset)."""

    root = None

    def __init__(self, path, root):
        self.path, self.root_group = path, root

    def children(self, model: dict, handle, layers: list):
        for entry in layers:
            name = _name(entry)
            if handle is not None:  # a layer of a nested model: its weights carry its name
                yield entry, [(w, d) for w, d in handle if name in w.split("/")[:-1]]
            elif name in self.root_group and hasattr(self.root_group[name], "attrs"):
                group = self.root_group[name]
                found = []
                for weight in _names(group.attrs, "weight_names"):
                    if not isinstance(group.get(weight), Dataset):
                        raise PortError(f"{self.path}: layer {brief(name)} lists weight "
                                        f"{brief(weight)}, which is not a dataset of its group")
                    found.append((weight, group[weight]))
                yield entry, found
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

    def count(self, handle) -> int:
        return sum(math.prod(d.shape) for _, d in handle or [])


def _names(attrs, key: str) -> list[str]:
    """A list of names Keras 2 stored in ``attrs[key]``, or split over key0, key1, ... when it
    was longer than an HDF5 header holds (``save_attributes_to_hdf5_group``)."""
    if key in attrs:
        chunks = [attrs[key]]
    else:
        chunks, index = [], 0
        while f"{key}{index}" in attrs:
            chunks.append(attrs[f"{key}{index}"])
            index += 1
    return [text(name) for chunk in chunks for name in np.atleast_1d(chunk)]


# ---- small helpers ----

def _array(path: str, item) -> np.ndarray:
    if not isinstance(item, Dataset):
        raise PortError(f"{path}: {item.name} should be an array; it is a group")
    return item[()]


def _datasets(h5, name: str | None) -> list:
    """Every dataset under ``h5[name]`` (under ``h5`` itself for None)."""
    found = []
    group = h5 if name is None else h5.get(name)
    if group is not None and hasattr(group, "visititems"):
        group.visititems(lambda _, item: found.append(item) if hasattr(item, "shape") else None)
    return found


def _count(h5, name: str | None) -> tuple[int, int]:
    datasets = _datasets(h5, name)
    return len(datasets), sum(math.prod(d.shape) for d in datasets)


def _optimizer(h5, name: str) -> list[str]:
    datasets = _datasets(h5, name)
    return [f"optimizer state: {len(datasets)} tensors (not weights)"] if datasets else []
