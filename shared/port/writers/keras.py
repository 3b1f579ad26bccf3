"""The Keras writer: canonical layers to a ``.safetensors`` that ``keras_impl.load_ported`` reads.

Each source layer becomes one Keras layer (a PyTorch module of L layers becomes
L of them, ``{layer}.l{k}``, also when L = 1), with Keras's weight names in
``get_weights()`` order:

    source layer       Keras layer                             weights
    LSTM               keras.layers.LSTM(H)                    kernel (in, 4H), recurrent_kernel
                                                               (H, 4H), bias (4H,) = b_ih + b_hh
    GRU                keras.layers.GRU(H); reset_after=False  kernel (in, 3H), recurrent_kernel,
                         where the source resets before        bias (2, 3H), or (3H,)
    bidirectional      keras.layers.Bidirectional(...)         {layer}.forward.*, {layer}.backward.*
    embedding (V, E)   keras.layers.Embedding(V, E)            embeddings (V, E)
    dense              keras.layers.Dense(out)                 kernel (in, out), bias (out,)

A Keras layer is found by name: a source name's "." and "/" read as "_"
(``encoder.rnn.l0`` is the layer named ``encoder_rnn_l0``).  A layer read from a
Keras 2 file keeps Keras 2's activations: its "hard_sigmoid" is written as
``keras_impl.keras2_hard_sigmoid`` (``shared.port.activations``), and DST's
metadata records every recurrent layer's activations for ``load_ported``.
"""

from __future__ import annotations

from shared.port import activations, rules
from shared.port.canonical import to_keras
from shared.port.files import (
    TargetLayer,
    Written,
    check_destination,
    save,
    written_or_refused,
)
from shared.port.layers import Dense, Embedding, Recurrent, Source, keras_name

WEIGHTS = ("kernel", "recurrent_kernel", "bias")


def plan_keras(source: Source, destination: str, partial: bool = False) -> Written:
    """The layers and tensors DST will hold; PortError when a layer cannot go to Keras
    (with ``partial``, such layers are skipped and listed instead)."""
    skipped = rules.refuse(source, "keras", partial)
    left_out = {s.name for s in skipped}
    layers = [target for layer in source.ported() if layer.name not in left_out
              for target in _targets(layer)]
    return written_or_refused(source.path, destination, "keras", layers, skipped)


def write_keras(source: Source, destination: str, partial: bool = False) -> Written:
    """Check, then write DST (.safetensors) for Keras; returns what was written."""
    check_destination(source.path, destination, "keras")
    written = plan_keras(source, destination, partial)
    save(written, source.path)
    return written


def _line(name: str, kind: str, args: tuple, kwargs: dict, bidirectional: bool = False) -> str:
    arguments = [*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    named = f'name="{keras_name(name)}"'
    if bidirectional:
        inner = f"keras.layers.{kind}({', '.join(arguments)})"
        return f"{keras_name(name)} = keras.layers.Bidirectional({inner}, {named})"
    return f"{keras_name(name)} = keras.layers.{kind}({', '.join([*arguments, named])})"


def _targets(layer) -> list[TargetLayer]:
    if isinstance(layer, Recurrent):
        return [_recurrent(layer, k) for k in range(layer.num_layers)]
    if isinstance(layer, Embedding):
        args = tuple(layer.weight.shape)
        return [TargetLayer(layer.name, layer, "Embedding", args, {},
                            {"embeddings": layer.weight}, _line(layer.name, "Embedding", args, {}),
                            notes=list(layer.notes))]
    if isinstance(layer, Dense):
        kwargs = {}
        if layer.activation:
            kwargs["activation"] = layer.activation
        if layer.bias is None:
            kwargs["use_bias"] = False
        tensors = {"kernel": layer.weight.T.copy(),
                   **({"bias": layer.bias} if layer.bias is not None else {})}
        args = (layer.weight.shape[0],)
        notes = list(layer.notes)
        if layer.activation:
            notes.append(f"activation={layer.activation!r} as in the source; leave it out where "
                         "you train on logits")
        return [TargetLayer(layer.name, layer, "Dense", args, kwargs, tensors,
                            _line(layer.name, "Dense", args, kwargs), notes=notes)]
    raise AssertionError(f"not a ported layer: {layer!r}")


def _recurrent(layer: Recurrent, k: int) -> TargetLayer:
    # A PyTorch module (or an ONNX stack of one) holds L layers; Keras has one layer per k,
    # so name each.
    stacked = layer.origin == "torch" or layer.num_layers > 1
    name = (f"{layer.name}.l{k}" if layer.name else f"l{k}") if stacked else layer.name
    tensors = {}
    for direction in layer.directions:
        arrays = to_keras(layer.cell, layer.weights, f"l{k}.{direction}", layer.reset_after)
        prefix = f"{direction}." if layer.bidirectional else ""
        tensors.update({f"{prefix}{w}": a for w, a in zip(WEIGHTS, arrays, strict=True)})
    version = layer.settings.get("keras_version", 3)
    kwargs = {key: activations.for_keras3(value, version) if "activation" in key else value
              for key, value in rules.keras_options(layer).items()}
    if layer.cell == "gru" and not layer.reset_after:
        kwargs["reset_after"] = False
    gates = {key: kwargs.get(key, default) for key, default in rules.KERAS_DEFAULTS.items()
             if "activation" in key}
    notes = list(layer.notes) if k == 0 else []
    if activations.KERAS2_HARD_SIGMOID in gates.values():
        notes.append("the source is a Keras 2 layer, whose hard_sigmoid is clip(0.2x + 0.5, 0, "
                     "1); Keras 3's hard_sigmoid is another curve: build the layer as printed, "
                     "with keras_impl.keras2_hard_sigmoid")
    kind = layer.cell.upper()
    return TargetLayer(name, layer, kind, (layer.hidden,), kwargs, tensors,
                       _line(name, kind, (layer.hidden,), kwargs, layer.bidirectional),
                       layer.bidirectional, notes, index=k,
                       activations={key: getattr(value, "name", value)
                                    for key, value in gates.items()})
