"""Keras weights <-> the canonical layout: the mirror of ``torch_impl/weights.py``.

Keras's layout differs from the canonical (PyTorch-shaped) one in its kernels,
which are transposed ((in, G*H) rather than (G*H, in)), and per cell:

- LSTM: the gate order i, f, c(=g), o is already the canonical one, but Keras
  keeps one bias where the canonical layout keeps two.  Exporting puts the Keras
  bias in b_ih and zeros in b_hh; importing adds b_ih + b_hh.
- GRU: Keras stacks z, r, h where the canonical layout stacks r, z, n, so the
  first two blocks swap; its bias (2, 3H) holds b_ih and b_hh as rows, both kept.

``shared.layout`` does both conversions; this file only finds the arrays.

Attention (``keras_impl.attention``): every projection is a bias-free ``Dense``
whose kernel (in, out) is the canonical W (out, in) transposed; v_a is
``AdditiveAttention``'s ``scale`` (H_dec,), as it is.

Shapes: H hidden of the layer, in its input width, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shared.layout import (
    check_weights,
    join_gates,
    keras_gru_to_torch,
    keras_lstm_to_torch,
    recurrent_layers,
    split_gates,
    torch_gru_to_keras,
    torch_lstm_to_keras,
)

# Each cell's converters between Keras's arrays and the stacked PyTorch layout.
TO_TORCH = {"lstm": keras_lstm_to_torch, "gru": keras_gru_to_torch}
FROM_TORCH = {"lstm": torch_lstm_to_keras, "gru": torch_gru_to_keras}


def _rnn_parts(model) -> Iterator[tuple[str, object]]:
    """Each (canonical prefix, Keras cell), in canonical order."""
    cfg = model.config
    for layer in recurrent_layers(cfg):
        if layer.side == "decoder":
            rnn = model.decoder_rnn[layer.index]
        elif cfg.bidirectional:
            # Bidirectional keeps two copies of the layer, one per direction.
            both = model.encoder_rnn[layer.index]
            rnn = both.forward_layer if layer.direction == "forward" else both.backward_layer
        else:
            rnn = model.encoder_rnn[layer.index]
        yield layer.prefix, rnn.cell


def _rnn_params(cell) -> list:
    """(kernel (in, G*H), recurrent_kernel (H, G*H), bias (4H,) or (2, 3H)) of one cell."""
    return [cell.kernel, cell.recurrent_kernel, cell.bias]


def _attention_parts(model) -> list[tuple[str, object, bool]]:
    """Each (canonical name, Keras variable, transposed?) of the attention; [] without."""
    attention = model.decoder_attention
    if attention is None:
        return []
    if model.config.attention == "luong":
        parts = [("W_a", attention.W_a.kernel, True)]
    else:
        parts = [("W_1", attention.W_1.kernel, True), ("W_2", attention.W_2.kernel, True),
                 ("v_a", attention.score.scale, False)]  # AdditiveAttention's scale is v_a
    parts.append(("W_c", attention.W_c.kernel, True))
    return [(f"decoder.attention.{name}", variable, t) for name, variable, t in parts]


def _numpy(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def to_canonical(model, read=lambda v: v) -> dict[str, np.ndarray]:
    """``read(variable)`` for every variable, named in the canonical layout.

    ``read`` picks what to take from each variable: the variable itself for
    weights, its gradient for gradients (which share the weights' layout).
    """
    cell = model.config.cell
    values = {"encoder.embedding": _numpy(read(model.encoder_embedding.embeddings))}  # (V_src, E)
    for prefix, rnn_cell in _rnn_parts(model):
        torch_layout = TO_TORCH[cell](*(_numpy(read(v)) for v in _rnn_params(rnn_cell)))
        values.update(split_gates(prefix, *torch_layout, cell=cell))
    values["decoder.embedding"] = _numpy(read(model.decoder_embedding.embeddings))    # (V_tgt, E)
    for name, variable, transposed in _attention_parts(model):
        value = _numpy(read(variable))                         # kernel (in, out) or v_a (H_dec,)
        values[name] = value.T if transposed else value
    # Dense stores its kernel as (in, out) = (H_dec, V_tgt): transposed from canonical.
    values["decoder.output.W"] = _numpy(read(model.decoder_output.kernel)).T    # (V_tgt, H_dec)
    values["decoder.output.b"] = _numpy(read(model.decoder_output.bias))              # (V_tgt,)
    return check_weights(values, model.config)


def export_weights(model) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (float32 NumPy, named gate by gate).

    An LSTM's one Keras bias is exported as b_ih, with zeros in b_hh: the sum is what
    counts.  A GRU's two biases export as they are.
    """
    return to_canonical(model)


def from_canonical(model, arrays: dict[str, np.ndarray], write=None) -> None:
    """``write(variable, value)`` for every variable, from arrays in the canonical layout.

    The inverse of ``to_canonical``: ``write`` puts each variable's share somewhere,
    the variable itself for weights (the default, ``variable.assign``), the
    optimizer's slot of that variable for an optimizer state (``keras_impl.optimizer``).
    Every array is checked before anything is written.

    Raises:
        ValueError: naming the missing, unexpected, wrong-shape or non-finite tensor.
    """
    arrays = check_weights(arrays, model.config)
    write = write or (lambda variable, value: variable.assign(value))
    cell = model.config.cell
    write(model.encoder_embedding.embeddings, arrays["encoder.embedding"])
    for prefix, rnn_cell in _rnn_parts(model):
        keras_layout = FROM_TORCH[cell](*join_gates(arrays, prefix, cell))
        for variable, array in zip(_rnn_params(rnn_cell), keras_layout, strict=True):
            write(variable, array)
    write(model.decoder_embedding.embeddings, arrays["decoder.embedding"])
    for name, variable, transposed in _attention_parts(model):
        write(variable, arrays[name].T if transposed else arrays[name])
    write(model.decoder_output.kernel, arrays["decoder.output.W"].T)
    write(model.decoder_output.bias, arrays["decoder.output.b"])


def import_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights, strictly: every name present, no extra name, every shape right.

    All checks run before anything is assigned, so a refused dict leaves the
    model untouched.

    Raises:
        ValueError: naming the missing, unexpected, wrong-shape or non-finite tensor.
    """
    from_canonical(model, weights)
