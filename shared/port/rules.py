"""The refusal rules: which layers a target cannot express, and the words that say why.

A port is refused as a whole, before anything is written, when any layer with
weights cannot be expressed in the target; the refusal is one line naming every
such layer and why, and saying that ``--partial`` exists.  With ``--partial``
those layers are skipped instead: the others are written, and the report and
DST's metadata list each skipped layer with its type and parameter count.  Two
kinds of reasons:

- no target can express it (the reader makes an ``Unportable`` layer with one
  of the texts below): LSTM peepholes, projections (``proj_size``, TF1
  ``num_proj``), cell clipping, ONNX activations other than the defaults, a
  ``Lambda`` layer or a custom class (its Python is never run), a layer type
  the port does not know;
- one target cannot (decided here, from the layer): a GRU that resets before
  the recurrent product (``reset_after=False``, every TF1 ``GRUCell``, ONNX
  ``linear_before_reset=0``) or a Keras LSTM/GRU with non-default activations
  or ``go_backwards=True``, to PyTorch: ``nn.LSTM``/``nn.GRU`` compute only
  σ/tanh gates, forwards, resetting after the product (Keras 2's ``hard_sigmoid``
  is named as Keras 2's: ``shared.port.activations``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.port import activations
from shared.port.layers import PortError, Recurrent, Source, Unportable, parameters

PEEPHOLES = (
    "has peephole weights (the gates read c); neither nn.LSTM nor keras.layers.LSTM has peepholes"
)
PROJECTION = (
    "projects h to a smaller width ({what}); keras.layers.LSTM has no projection and the port "
    "does not carry one"
)
CLIPPING = "clips its cell state ({what}); nn.LSTM and keras.layers.LSTM never clip"
ONNX_OPTION = "uses {what}; nn.LSTM, nn.GRU and their Keras twins have no such option"
LAMBDA = "holds Python code, which port never runs and so cannot port"
CUSTOM = (
    "is a custom class ({what}): what it computes is code, which port never runs"
)
UNKNOWN = "is a layer type with weights that port does not know"
RESET_BEFORE = (
    "is a GRU that resets before the recurrent product ({what}); nn.GRU resets after it and "
    "cannot compute it; port it --to keras, as keras.layers.GRU(reset_after=False)"
)
KERAS_ONLY = (
    "uses {what}; nn.{cell} computes only sigmoid/tanh gates, forwards; port it --to keras"
)
PARTIAL = "--partial ports the other layers and lists these in the report and in DST"


@dataclass(frozen=True)
class Skipped:
    """A layer a ``--partial`` port leaves out: its name, type, parameter count and why."""

    name: str
    what: str
    parameters: int
    why: str

    @property
    def line(self) -> str:
        return f"{self.name!r} ({self.what}, {self.parameters:,} parameters): {self.why}"


def refused(source: Source, target: str) -> list[tuple[object, str]]:
    """(layer, why) for every layer of ``source`` that ``target`` cannot express."""
    found = []
    for layer in source.layers:
        if isinstance(layer, Unportable):
            found.append((layer, layer.why))
        elif isinstance(layer, Recurrent) and target == "torch":
            whys = []
            if layer.cell == "gru" and not layer.reset_after:
                whys.append(RESET_BEFORE.format(what=layer.settings.get("reset",
                                                                        "reset_after=False")))
            special = keras_options(layer)
            if special:
                version = layer.settings.get("keras_version", 3)
                what = ", ".join(f"{key}={activations.described(value, version)}"
                                 if isinstance(value, str) else f"{key}={value!r}"
                                 for key, value in special.items())
                whys.append(KERAS_ONLY.format(what=what, cell=layer.cell.upper()))
            found.extend((layer, why) for why in whys)
    return found


def refusals(source: Source, target: str) -> list[str]:
    """Every layer of ``source`` that ``target`` cannot express, as "'name' (a what that why)"."""
    return [f"{layer.name!r} ({layer.what} {why})" for layer, why in refused(source, target)]


def refuse(source: Source, target: str, partial: bool = False) -> list[Skipped]:
    """The layers ``target`` cannot express, as ``Skipped`` with ``partial``; else PortError
    listing every one of them (nothing when all can go)."""
    found = refused(source, target)
    if found and not partial:
        layers = "1 layer" if len(found) == 1 else f"{len(found)} layers"
        raise PortError(
            f"cannot port {source.path} to {target}, nothing written: {layers} cannot be "
            f"expressed: " + "; ".join(refusals(source, target)) + f". {PARTIAL}"
        )
    skipped: dict[int, Skipped] = {}
    for layer, why in found:  # one entry per layer, its reasons joined
        before = skipped.get(id(layer))
        why = why if before is None else f"{before.why}; and {why}"
        skipped[id(layer)] = Skipped(layer.name, layer.what, parameters(layer), why)
    return list(skipped.values())


# A Keras recurrent layer's options that change what it computes, with PyTorch's values.
KERAS_DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "go_backwards": False}


def keras_options(layer: Recurrent) -> dict:
    """The options of a Keras LSTM/GRU that differ from what nn.LSTM/nn.GRU compute."""
    options = layer.settings.get("keras_options", {})
    return {key: value for key, value in options.items() if KERAS_DEFAULTS.get(key) != value}
