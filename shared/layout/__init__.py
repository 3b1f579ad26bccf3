"""The canonical weight layout: every gate's piece of the model, named once.

Weights cross between frameworks only through this layout.  ``canonical`` names
and shapes every piece; ``gates`` holds the gate tables and equations; ``lstm``
and ``gru`` the converters between each framework's arrays and the canonical
ones, side by side; ``attention`` the attention weights' names.  The public names
are re-exported here: ``from shared.layout import random_weights, keras_lstm_to_torch``.

May import: shared.core; NumPy and the standard library.
"""

from shared.layout.canonical import (
    RecurrentLayer,
    canonical_shapes,
    check_weights,
    count_parameters,
    join_gates,
    layer_prefix,
    random_weights,
    recurrent_layers,
    split_gates,
)
from shared.layout.gates import CELL_GATES, GATE_ORDER, GRU_GATE_ORDER, reorder_gates
from shared.layout.gru import (  # the converters a porting user calls
    keras_gru_to_onnx,
    keras_gru_to_tf1,
    keras_gru_to_torch,
    onnx_gru_to_keras,
    tf1_gru_to_keras,
    torch_gru_to_keras,
)
from shared.layout.lstm import (
    keras_lstm_to_onnx,
    keras_lstm_to_tf1,
    keras_lstm_to_torch,
    onnx_lstm_to_keras,
    tf1_lstm_to_keras,
    torch_lstm_to_keras,
)

__all__ = [
    "CELL_GATES",
    "GATE_ORDER",
    "GRU_GATE_ORDER",
    "RecurrentLayer",
    "canonical_shapes",
    "check_weights",
    "count_parameters",
    "join_gates",
    "keras_gru_to_onnx",
    "keras_gru_to_tf1",
    "keras_gru_to_torch",
    "keras_lstm_to_onnx",
    "keras_lstm_to_tf1",
    "keras_lstm_to_torch",
    "layer_prefix",
    "onnx_gru_to_keras",
    "onnx_lstm_to_keras",
    "random_weights",
    "recurrent_layers",
    "reorder_gates",
    "split_gates",
    "tf1_gru_to_keras",
    "tf1_lstm_to_keras",
    "torch_gru_to_keras",
    "torch_lstm_to_keras",
]
