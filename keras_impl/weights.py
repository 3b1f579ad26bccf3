"""Keras weights <-> the canonical layout: the mirror of ``torch_impl/weights.py``.

Keras's layout differs from the canonical one in two ways, both handled by
``shared.layout``: its kernels are transposed ((in, 4H) rather than (4H, in)),
and it keeps one bias where the canonical layout (like PyTorch) keeps two.
Exporting puts the Keras bias in b_ih and zeros in b_hh; importing adds
b_ih + b_hh.  The gate order, i, f, c(=g), o, is already the canonical one.

Shapes: H hidden of the layer, in its input width, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shared.layout import (
    check_weights,
    join_gates,
    keras_lstm_to_torch,
    layer_prefix,
    split_gates,
    torch_lstm_to_keras,
)


def _lstm_parts(model) -> Iterator[tuple[str, object]]:
    """Each (canonical prefix, LSTM cell), in canonical order."""
    cfg = model.config
    for k in range(cfg.num_layers):
        layer = model.encoder_lstm[k]
        if cfg.bidirectional:
            # Bidirectional keeps two copies of the LSTM, one per direction.
            yield layer_prefix("encoder", k, "forward"), layer.forward_layer.cell
            yield layer_prefix("encoder", k, "backward"), layer.backward_layer.cell
        else:
            yield layer_prefix("encoder", k, "forward"), layer.cell
    for k in range(cfg.num_layers):
        yield layer_prefix("decoder", k), model.decoder_lstm[k].cell


def _lstm_params(cell) -> list:
    """(kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)) of one cell."""
    return [cell.kernel, cell.recurrent_kernel, cell.bias]


def _numpy(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def to_canonical(model, read=lambda v: v) -> dict[str, np.ndarray]:
    """``read(variable)`` for every variable, named in the canonical layout.

    ``read`` picks what to take from each variable: the variable itself for
    weights, its gradient for gradients (which share the weights' layout).
    """
    values = {"encoder.embedding": _numpy(read(model.encoder_embedding.embeddings))}  # (V_src, E)
    for prefix, cell in _lstm_parts(model):
        torch_layout = keras_lstm_to_torch(*(_numpy(read(v)) for v in _lstm_params(cell)))
        values.update(split_gates(prefix, *torch_layout))
    values["decoder.embedding"] = _numpy(read(model.decoder_embedding.embeddings))    # (V_tgt, E)
    # Dense stores its kernel as (in, out) = (H_dec, V_tgt): transposed from canonical.
    values["decoder.output.W"] = _numpy(read(model.decoder_output.kernel)).T    # (V_tgt, H_dec)
    values["decoder.output.b"] = _numpy(read(model.decoder_output.bias))              # (V_tgt,)
    return check_weights(values, model.config)


def export_weights(model) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (float32 NumPy, named gate by gate).

    Keras's one bias is exported as b_ih, with zeros in b_hh: the sum is what counts.
    """
    return to_canonical(model)


def import_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights, strictly: every name present, no extra name, every shape right.

    All checks run before anything is assigned, so a refused dict leaves the
    model untouched.

    Raises:
        ValueError: naming the missing, unexpected, wrong-shape or non-finite tensor.
    """
    weights = check_weights(weights, model.config)
    model.encoder_embedding.embeddings.assign(weights["encoder.embedding"])
    for prefix, cell in _lstm_parts(model):
        keras_layout = torch_lstm_to_keras(*join_gates(weights, prefix))
        for variable, array in zip(_lstm_params(cell), keras_layout, strict=True):
            variable.assign(array)
    model.decoder_embedding.embeddings.assign(weights["decoder.embedding"])
    model.decoder_output.kernel.assign(weights["decoder.output.W"].T)
    model.decoder_output.bias.assign(weights["decoder.output.b"])
