"""The canonical weights read back from the two ONNX graphs: the inverse of building them.

``shared.onnx.graph`` builds the graphs from canonical weights through the layout's
converters (canonical PyTorch stacks -> Keras arrays -> ONNX arrays); this module walks
the same converters backwards, so that ``export_weights`` exists on ONNX Runtime too
and a folder's weights can be compared with the checkpoint it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np
import onnx
from onnx import numpy_helper

from shared.core.config import Seq2SeqConfig
from shared.layout import (
    keras_gru_to_torch,
    keras_lstm_to_torch,
    onnx_gru_to_keras,
    onnx_lstm_to_keras,
    recurrent_layers,
    split_gates,
)
from shared.layout.attention import attention_shapes

# ONNX arrays -> Keras arrays -> canonical (PyTorch) stacks, per cell.  The GRU's
# linear_before_reset=1 is the reset-after form every graph here is built with.
_FROM_ONNX = {
    "lstm": (onnx_lstm_to_keras, keras_lstm_to_torch),
    "gru": (partial(onnx_gru_to_keras, linear_before_reset=1), keras_gru_to_torch),
}


def canonical_weights(models: Mapping[str, onnx.ModelProto | bytes], config: Seq2SeqConfig) -> dict:
    """The canonical weights the two graphs hold: the inverse of building them.

    Every initializer that carries a weight is read back through the converters the
    graphs were built with, in reverse: ONNX (W, R, B) per direction -> Keras ->
    PyTorch stacks -> gate by gate (``split_gates``); the transposed attention and
    output matrices are transposed back.  An LSTM's two biases went in summed (only
    the sum acts): they come back as b_ih = the sum and b_hh = 0, as Keras exports them.

    Args:
        models: {"encoder": model, "decoder": model}, ModelProtos or their bytes, ours
            (checked by ``shared.onnx.export.read_models`` or built by ``build_models``).
        config: their config.

    Returns:
        A dict in canonical order (``shared.layout.canonical_shapes``), float32.
    """
    protos = {part: onnx.load_model_from_string(model) if isinstance(model, bytes) else model
              for part, model in models.items()}
    tensors = {tensor.name: numpy_helper.to_array(tensor)
               for part in ("encoder", "decoder") for tensor in protos[part].graph.initializer}
    from_onnx, to_torch = _FROM_ONNX[config.cell]
    weights = {"encoder.embedding": tensors["encoder.embedding"]}
    for side in ("encoder", "decoder"):
        if side == "decoder":
            weights["decoder.embedding"] = tensors["decoder.embedding"]
        for layer in recurrent_layers(config, side):
            d = 1 if layer.direction == "backward" else 0
            W, R, B = (tensors[f"{side}.layers.{layer.index}.{name}"][d] for name in "WRB")
            weights.update(split_gates(layer.prefix, *to_torch(*from_onnx(W, R, B)), config.cell))
    for name, shape in attention_shapes(config).items():
        piece = name.rsplit(".", 1)[1]
        if piece == "v_a":
            weights[name] = tensors["decoder.attention.v_a_column"][:, 0]       # (H_dec,)
        else:
            weights[name] = tensors[f"{name}_T"].T                             # (out, in)
        assert weights[name].shape == shape, (name, weights[name].shape, shape)
    weights["decoder.output.W"] = tensors["decoder.output.W_T"].T              # (V_tgt, H_dec)
    weights["decoder.output.b"] = tensors["decoder.output.b"]                  # (V_tgt,)
    return {name: np.ascontiguousarray(value, np.float32) for name, value in weights.items()}
