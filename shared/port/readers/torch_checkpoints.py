"""The models in what ``torch.save`` saved: a state_dict, a training checkpoint, several.

People save more than a state_dict.  What ``torch.load(weights_only=True)`` gave
(tensors already NumPy arrays) is sorted here, entry by entry:

    the file holds                                     port reads
    {"encoder.rnn.weight_ih_l0": tensor, ...}          one state_dict: the model
    {"epoch": 3, "model_state_dict": {...},            the model's state_dict; epoch, loss and
     "optimizer_state_dict": {...}, "loss": 0.5}         the optimizer's state are set aside
    {"encoder": {...}, "decoder": {...}}               one sub-model per state_dict, each named
                                                         by its key ("encoder.embedding"),
                                                         listed under its own heading
    every key starting with "module."                  DDP's wrapper: the prefix is dropped

A state_dict is a dict whose values are all arrays; an optimizer's (or a
scheduler's, a GradScaler's) is told by its key or by its "state" and
"param_groups"; scalars are noted; anything else is set aside by name.

Shape legend: none; names only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from shared.port.layers import PortError

TRAINING = re.compile(r"optim|sched|scaler|amp\b|grad", re.IGNORECASE)
DDP = "module."


@dataclass
class Found:
    """The models in a file: one flat dict of arrays, and what the report must say."""

    tensors: dict[str, np.ndarray]
    kind: str = ""  # "training checkpoint", "dict of state_dicts"; "" for a plain state_dict
    about: list[str] = field(default_factory=list)
    submodels: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(item, np.ndarray) for item in value.values())


def models(path: str, loaded) -> Found:
    """The models ``loaded`` holds, flattened into one dict named as the report prints them."""
    if not isinstance(loaded, dict) or not loaded:
        raise PortError(f"{path} holds a {type(loaded).__name__}, not a state_dict (a dict of "
                        "tensors); save model.state_dict()")
    if _state_dict(loaded):
        tensors, about = _without_ddp(loaded)
        return Found({str(k): v for k, v in tensors.items()}, "", about)
    found, scalars, ignored = {}, [], []
    for key, value in loaded.items():
        key = str(key)
        if _state_dict(value) and not TRAINING.search(key):
            found[key] = value
        elif isinstance(value, bool | int | float | str) or value is None:
            scalars.append(f"{key}={value!r}")
        elif TRAINING.search(key) or (isinstance(value, dict)
                                      and {"state", "param_groups"} <= set(value)):
            ignored.append(f"{key}: training state (optimizer, scheduler), not weights")
        elif isinstance(value, np.ndarray):
            ignored.append(f"{key}: a lone tensor {value.shape}, outside any state_dict")
        else:
            ignored.append(f"{key}: a {type(value).__name__}, not a state_dict")
    if not found:
        raise PortError(f"{path} holds no state_dict (a dict of tensors) among its entries "
                        f"{', '.join(map(str, loaded))}; save model.state_dict()")
    about = [f"also in the file, not weights: {', '.join(scalars)}"] if scalars else []
    if len(found) == 1:
        (key, state), = found.items()
        tensors, ddp = _without_ddp(state)
        about = [f"a training checkpoint: the model is its state_dict under {key!r}", *ddp,
                 *about]
        return Found(tensors, "training checkpoint", about, {}, ignored)
    tensors, submodels = {}, {}
    for key, state in found.items():
        state, ddp = _without_ddp(state)
        tensors.update({f"{key}.{name}" if name else key: v for name, v in state.items()})
        numbers = sum(int(v.size) for v in state.values())
        submodels[key] = (f"sub-model {key!r}: its own state_dict, {len(state)} tensors "
                          f"({numbers:,} numbers){'; ' + ddp[0] if ddp else ''}")
    names = ", ".join(found)
    about = [f"a dict of {len(found)} state_dicts ({names}): each is a sub-model, its layers "
             f"named '{{key}}.{{module}}'; in PyTorch load them together, e.g. into "
             f"nn.ModuleDict({{{', '.join(f'{k!r}: {k}' for k in found)}}})", *about]
    return Found(tensors, "dict of state_dicts", about, submodels, ignored)


def _without_ddp(state: dict) -> tuple[dict, list[str]]:
    """``state`` without DDP's "module." on every key, and the line saying so."""
    keys = [str(key) for key in state]
    if not all(key.startswith(DDP) for key in keys):
        return {str(k): v for k, v in state.items()}, []
    return ({key[len(DDP):]: value for key, value in zip(keys, state.values(), strict=True)},
            ["DDP's prefix 'module.' dropped from every name: load it into the model itself "
             "(ddp_model.module)"])
