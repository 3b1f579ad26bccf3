"""The float64 NumPy reference every engine is compared with.

``cells`` (one LSTM or GRU step, one layer), ``attention`` (Luong and Bahdanau),
``model`` (the whole encoder-decoder: encode, decode, forward, greedy decoding),
``search`` (beam search over the reference's decoder step).
``from shared import reference``, then ``reference.encode(weights, config, src)``.

May import: shared.core, shared.layout, shared.decoding; NumPy and the standard library.
"""

from shared.reference.cells import gru_cell, gru_layer, lstm_cell, lstm_layer, rnn_layer, sigmoid
from shared.reference.model import attention_weights, decode, encode, forward, greedy_decode
from shared.reference.search import beam_decode

__all__ = [
    "attention_weights",
    "beam_decode",
    "decode",
    "encode",
    "forward",
    "greedy_decode",
    "gru_cell",
    "gru_layer",
    "lstm_cell",
    "lstm_layer",
    "rnn_layer",
    "sigmoid",
]
