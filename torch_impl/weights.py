"""PyTorch weights <-> the canonical layout: the mirror of ``keras_impl/weights.py``.

PyTorch's own layout is already the canonical one stacked: ``weight_ih_l{k}``
(4H, in) holds W_i, W_f, W_g, W_o one under the other, and both biases are
kept.  So the only work is naming: ``shared.layout.split_gates`` cuts the
stacks into named gates, ``join_gates`` stacks them back.  Nothing is
transposed.

Shapes: H hidden of the layer, in its input width, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from shared.layout import check_weights, join_gates, layer_prefix, split_gates


def _lstm_parts(model) -> Iterator[tuple[str, torch.nn.LSTM, str]]:
    """Each (canonical prefix, nn.LSTM, parameter suffix), in canonical order."""
    cfg = model.config
    directions = ("forward", "backward") if cfg.bidirectional else ("forward",)
    for k in range(cfg.num_layers):
        for direction in directions:
            # nn.LSTM names the backward direction of layer k "l{k}_reverse".
            suffix = f"l{k}" + ("_reverse" if direction == "backward" else "")
            yield layer_prefix("encoder", k, direction), model.encoder_lstm, suffix
    for k in range(cfg.num_layers):
        yield layer_prefix("decoder", k), model.decoder_lstm, f"l{k}"


def _lstm_params(lstm: torch.nn.LSTM, suffix: str) -> list[torch.nn.Parameter]:
    """(weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,)) of one layer."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return [getattr(lstm, f"{name}_{suffix}") for name in names]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def to_canonical(model, read=lambda p: p) -> dict[str, np.ndarray]:
    """``read(parameter)`` for every parameter, named in the canonical layout.

    ``read`` picks what to take from each parameter: the parameter itself for
    weights, ``p.grad`` for gradients (which share the weights' layout).
    """
    values = {"encoder.embedding": _numpy(read(model.encoder_embedding.weight))}    # (V_src, E)
    for prefix, lstm, suffix in _lstm_parts(model):
        values.update(split_gates(prefix, *(_numpy(read(p)) for p in _lstm_params(lstm, suffix))))
    values["decoder.embedding"] = _numpy(read(model.decoder_embedding.weight))      # (V_tgt, E)
    # nn.Linear stores W as (out, in) = (V_tgt, H_dec): the canonical orientation.
    values["decoder.output.W"] = _numpy(read(model.decoder_output.weight))          # (V_tgt, H_dec)
    values["decoder.output.b"] = _numpy(read(model.decoder_output.bias))            # (V_tgt,)
    return check_weights(values, model.config)


def export_weights(model) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (float32 NumPy, named gate by gate)."""
    return to_canonical(model)


def import_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights, strictly: every name present, no extra name, every shape right.

    All checks run before anything is copied, so a refused dict leaves the model
    untouched.

    Raises:
        ValueError: naming the missing, unexpected, wrong-shape or non-finite tensor.
    """
    weights = check_weights(weights, model.config)
    with torch.no_grad():
        model.encoder_embedding.weight.copy_(torch.from_numpy(weights["encoder.embedding"]))
        for prefix, lstm, suffix in _lstm_parts(model):
            arrays = join_gates(weights, prefix)
            for param, array in zip(_lstm_params(lstm, suffix), arrays, strict=True):
                param.copy_(torch.from_numpy(array))
        model.decoder_embedding.weight.copy_(torch.from_numpy(weights["decoder.embedding"]))
        model.decoder_output.weight.copy_(torch.from_numpy(weights["decoder.output.W"]))
        model.decoder_output.bias.copy_(torch.from_numpy(weights["decoder.output.b"]))
