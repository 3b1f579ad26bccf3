"""PyTorch weights <-> the canonical layout: the mirror of ``keras_impl/weights.py``.

PyTorch's own layout is already the canonical one stacked, for both cells:
``weight_ih_l{k}`` (G*H, in) holds the gates one under the other (i, f, g, o
for an LSTM, r, z, n for a GRU), and both biases are kept.  So the only work is
naming: ``shared.layout.split_gates`` cuts the stacks into named gates,
``join_gates`` stacks them back.  Nothing is transposed or reordered.

Attention (``torch_impl.attention``): every projection is a bias-free
``nn.Linear`` whose weight (out, in) is the canonical W as it is; v_a is the
weight (1, H_dec) of ``v_a``, its one row.

Shapes: H hidden of the layer, in its input width, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from shared.layout import check_weights, join_gates, recurrent_layers, split_gates


def _rnn_parts(model) -> Iterator[tuple[str, torch.nn.Module, str]]:
    """Each (canonical prefix, nn.LSTM or nn.GRU, parameter suffix), in canonical order."""
    for layer in recurrent_layers(model.config):
        rnn = model.encoder_rnn if layer.side == "encoder" else model.decoder_rnn
        # The module names the backward direction of layer k "l{k}_reverse".
        suffix = f"l{layer.index}" + ("_reverse" if layer.direction == "backward" else "")
        yield layer.prefix, rnn, suffix


def _rnn_params(rnn: torch.nn.Module, suffix: str) -> list[torch.nn.Parameter]:
    """(weight_ih (G*H, in), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,)) of one layer."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return [getattr(rnn, f"{name}_{suffix}") for name in names]


def _attention_parts(model) -> list[tuple[str, torch.nn.Parameter]]:
    """Each (canonical name, parameter) of the attention; [] without attention."""
    attention = model.decoder_attention
    if attention is None:
        return []
    names = ("W_a",) if model.config.attention == "luong" else ("W_1", "W_2", "v_a")
    return [(f"decoder.attention.{name}", getattr(attention, name).weight)
            for name in (*names, "W_c")]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def to_canonical(model, read=lambda p: p) -> dict[str, np.ndarray]:
    """``read(parameter)`` for every parameter, named in the canonical layout.

    ``read`` picks what to take from each parameter: the parameter itself for
    weights, ``p.grad`` for gradients (which share the weights' layout).
    """
    cell = model.config.cell
    values = {"encoder.embedding": _numpy(read(model.encoder_embedding.weight))}    # (V_src, E)
    for prefix, rnn, suffix in _rnn_parts(model):
        arrays = (_numpy(read(p)) for p in _rnn_params(rnn, suffix))
        values.update(split_gates(prefix, *arrays, cell=cell))
    values["decoder.embedding"] = _numpy(read(model.decoder_embedding.weight))      # (V_tgt, E)
    for name, param in _attention_parts(model):
        value = _numpy(read(param))                                     # (out, in), v_a (1, H_dec)
        values[name] = value[0] if name.endswith(".v_a") else value
    # nn.Linear stores W as (out, in) = (V_tgt, H_dec): the canonical orientation.
    values["decoder.output.W"] = _numpy(read(model.decoder_output.weight))          # (V_tgt, H_dec)
    values["decoder.output.b"] = _numpy(read(model.decoder_output.bias))            # (V_tgt,)
    return check_weights(values, model.config)


def export_weights(model) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (float32 NumPy, named gate by gate)."""
    return to_canonical(model)


def from_canonical(model, arrays: dict[str, np.ndarray], write=None) -> None:
    """``write(parameter, value)`` for every parameter, from arrays in the canonical layout.

    The inverse of ``to_canonical``: ``write`` puts each parameter's share somewhere,
    the parameter itself for weights (the default, ``param.copy_``), the optimizer's
    state of that parameter for an optimizer state (``torch_impl.optimizer``).  The
    values come as CPU tensors shaped like the parameter.  Every array is checked
    before anything is written.

    Raises:
        ValueError: naming the missing, unexpected, wrong-shape or non-finite tensor.
    """
    arrays = check_weights(arrays, model.config)
    write = write or (lambda param, value: param.copy_(value))
    cell = model.config.cell
    with torch.no_grad():
        write(model.encoder_embedding.weight, torch.from_numpy(arrays["encoder.embedding"]))
        for prefix, rnn, suffix in _rnn_parts(model):
            stacked = join_gates(arrays, prefix, cell)
            for param, array in zip(_rnn_params(rnn, suffix), stacked, strict=True):
                write(param, torch.from_numpy(array))
        write(model.decoder_embedding.weight, torch.from_numpy(arrays["decoder.embedding"]))
        for name, param in _attention_parts(model):
            write(param, torch.from_numpy(arrays[name]).view(param.shape))  # v_a: (H,) -> (1, H)
        write(model.decoder_output.weight, torch.from_numpy(arrays["decoder.output.W"]))
        write(model.decoder_output.bias, torch.from_numpy(arrays["decoder.output.b"]))


def import_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights, strictly: every name present, no extra name, every shape right.

    All checks run before anything is copied, so a refused dict leaves the model
    untouched.

    Raises:
        ValueError: naming the missing, unexpected, wrong-shape or non-finite tensor.
    """
    from_canonical(model, weights)
