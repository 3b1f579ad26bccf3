"""The PyTorch writer: canonical layers to a ``state_dict`` that plain ``nn`` modules load.

Each source layer becomes one module, named as in the source, with PyTorch's own
parameter names:

    source layer            module                                 parameters
    LSTM / GRU (L layers,   nn.LSTM / nn.GRU(in, H, num_layers=L,  weight_ih_l{k}, weight_hh_l{k},
      D directions)           bidirectional=D == 2, batch_first)   bias_ih_l{k}, bias_hh_l{k};
                                                                   _reverse for the backward one
    embedding (V, E)        nn.Embedding(V, E)                     weight (V, E)
    dense                   nn.Linear(in, out, bias=...)           weight (out, in), bias (out,)

So a module tree whose attributes carry those names (``encoder.rnn`` is the
attribute ``rnn`` of the attribute ``encoder``) loads DST with
``load_state_dict(strict=True)``.  A Keras LSTM's one bias goes to bias_ih and
zeros to bias_hh (only their sum acts); a Keras Dense's softmax is not a weight:
the report says where the target must apply it.
"""

from __future__ import annotations

import io

import numpy as np

from shared.port import rules
from shared.port.canonical import to_torch
from shared.port.files import (
    TargetLayer,
    Written,
    check_destination,
    save,
    written_or_refused,
)
from shared.port.layers import Dense, Embedding, Recurrent, Source

PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def plan_torch(source: Source, destination: str, partial: bool = False) -> Written:
    """The modules and tensors DST will hold; PortError when a layer cannot go to PyTorch
    (with ``partial``, such layers are skipped and listed instead)."""
    skipped = rules.refuse(source, "torch", partial)
    left_out = {s.name for s in skipped}
    layers = [_target(layer) for layer in source.ported() if layer.name not in left_out]
    return written_or_refused(source.path, destination, "torch", layers, skipped)


def write_torch(source: Source, destination: str, partial: bool = False) -> Written:
    """Check, then write DST (.safetensors or .pt) for PyTorch; returns what was written."""
    check_destination(source.path, destination, "torch")
    written = plan_torch(source, destination, partial)
    save(written, source.path)
    return written


def torch_file_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """The bytes of ``torch.save`` of a plain dict of tensors: what a .pt DST holds."""
    import torch

    buffer = io.BytesIO()
    torch.save({name: torch.from_numpy(array) for name, array in tensors.items()}, buffer)
    return buffer.getvalue()


def _line(name: str, kind: str, args: tuple, kwargs: dict) -> str:
    arguments = [*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    return f"{name or 'module'} = nn.{kind}({', '.join(arguments)})"


def _target(layer) -> TargetLayer:
    if isinstance(layer, Recurrent):
        tensors = {}
        for k in range(layer.num_layers):
            for direction in layer.directions:
                suffix = f"_l{k}" + ("_reverse" if direction == "backward" else "")
                arrays = to_torch(layer.cell, layer.weights, f"l{k}.{direction}")
                tensors.update({f"{p}{suffix}": a for p, a in zip(PARAMETERS, arrays, strict=True)})
        kwargs = {}
        if layer.num_layers > 1:
            kwargs["num_layers"] = layer.num_layers
        if layer.bidirectional:
            kwargs["bidirectional"] = True
        kwargs["batch_first"] = True
        kind, args = layer.cell.upper(), (layer.inputs, layer.hidden)
        return TargetLayer(layer.name, layer, kind, args, kwargs, tensors,
                           _line(layer.name, kind, args, kwargs), notes=list(layer.notes))
    if isinstance(layer, Embedding):
        args = tuple(layer.weight.shape)
        return TargetLayer(layer.name, layer, "Embedding", args, {}, {"weight": layer.weight},
                           _line(layer.name, "Embedding", args, {}), notes=list(layer.notes))
    if isinstance(layer, Dense):
        out, inputs = layer.weight.shape
        kwargs = {} if layer.bias is not None else {"bias": False}
        tensors = {"weight": layer.weight, **({"bias": layer.bias} if layer.bias is not None
                                              else {})}
        notes = list(layer.notes)
        if layer.activation:
            notes.append(f"the source applies activation={layer.activation!r} after it: apply "
                         f"it to this layer's output (e.g. torch.{layer.activation}(y, dim=-1))"
                         if layer.activation == "softmax" else
                         f"the source applies activation={layer.activation!r} after it: apply it "
                         "to this layer's output")
        return TargetLayer(layer.name, layer, "Linear", (inputs, out), kwargs, tensors,
                           _line(layer.name, "Linear", (inputs, out), kwargs), notes=notes)
    raise AssertionError(f"not a ported layer: {layer!r}")
