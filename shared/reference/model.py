"""The model written out in NumPy, float64: the ground truth both backends are checked against.

Nothing here is fast; everything is meant to be read.  The parity tests climb a
ladder with it: one cell step (``lstm_cell``, ``gru_cell``), one masked layer
(``rnn_layer``, ``lstm_layer``, ``gru_layer``; all in ``shared.reference.cells``),
the encoder's hand-off (``encode``), teacher-forced logits (``decode``,
``forward``), the attention weights (``attention_weights``; the attention itself
is in ``shared.reference.attention``) and greedy tokens (``greedy_decode``).

The state of one layer is a tuple: (h, c) for an LSTM, (h,) for a GRU.  The
hand-off is that tuple for every layer, each part (L, B, H_dec): an LSTM hands
over both h and c, a GRU only h, because h is all a GRU remembers.

Rows are post-padded with PAD; a row's length is its number of non-PAD ids, and
a padded step changes nothing, so every row ends in the state of its last real
token, whatever the batch width.

With attention (``config.attention``), the decoder also reads the memory: the top
encoder layer's outputs and the source mask (``shared.decoding.memory.Memory``), which
``encode(..., return_memory=True)`` returns beside the hand-off.

Weights come as a canonical dict (``shared.layout``); inputs are assumed valid
(the backends validate them).

Shape legend: B batch, S source length, T target length, E embedding, H hidden
(one direction), H_dec = D*H decoder hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shared.core.config import Seq2SeqConfig
from shared.core.tokens import BOS, EOS, PAD
from shared.decoding.memory import Memory, empty_memory
from shared.layout import join_gates, recurrent_layers
from shared.reference.attention import attend
from shared.reference.cells import (
    rnn_layer,
    step_function,
)

State = tuple[np.ndarray, ...]


def _gather_parts(states: list[State], join) -> State:
    """[(h_1, c_1), (h_2, c_2), ...] -> (join([h_1, h_2, ...]), join([c_1, c_2, ...])).

    ``join`` is ``np.concatenate`` (directions, on the feature axis) or ``np.stack``
    (layers, on a new first axis).
    """
    parts = len(states[0])
    if join is np.concatenate:
        return tuple(np.concatenate([s[j] for s in states], axis=-1) for j in range(parts))
    return tuple(join([s[j] for s in states]) for j in range(parts))


def encode(
    weights: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    src: np.ndarray,
    return_memory: bool = False,
) -> State | tuple[State, Memory]:
    """The encoder's hand-off: each layer's final state, directions concatenated.

    Layer 0 reads the source embeddings; layer k > 0 reads layer k-1's outputs, the
    forward and backward outputs side by side.  Each layer hands the decoder
    h = [h_forward, h_backward] (and for an LSTM c = [c_forward, c_backward]) along
    the feature axis, which is why the decoder is D*H wide.  An all-PAD row hands
    off zeros.

    Args:
        weights: canonical dict.
        config: the model's sizes and cell.
        src: (B, S) int source ids, post-padded with PAD.
        return_memory: also return what attention reads.

    Returns:
        (h, c) for an LSTM, (h,) for a GRU; each (L, B, H_dec) float64.  With
        ``return_memory``, (state, Memory(outputs (B, S, H_dec), mask (B, S))): the
        top layer's outputs, zeros at PAD, and src != PAD (an empty memory, outputs
        (B, S, 0), for a model without attention, as every engine gives).
    """
    src = np.asarray(src)
    lengths = (src != PAD).sum(axis=1)  # (B,)
    x = np.asarray(weights["encoder.embedding"], np.float64)[src]  # (B, S, E)
    rest = np.zeros((src.shape[0], config.hidden_size))  # (B, H): every layer starts from rest
    start = (rest,) * len(config.state_names)
    layers = recurrent_layers(config, "encoder")
    per_layer = []  # per layer k: the state parts, directions concatenated
    for k in range(config.num_layers):
        outputs, states = [], []
        for layer in (layer for layer in layers if layer.index == k):
            params = join_gates(weights, layer.prefix, config.cell)
            out, state = rnn_layer(
                config.cell, x, lengths, start, params, reverse=layer.direction == "backward"
            )  # out (B, S, H); each state part (B, H)
            outputs.append(out)
            states.append(state)
        x = np.concatenate(outputs, axis=-1)  # (B, S, D*H): the next layer's input
        per_layer.append(_gather_parts(states, np.concatenate))  # each part (B, H_dec)
    state = _gather_parts(per_layer, np.stack)  # each part (L, B, H_dec)
    if not return_memory:
        return state
    if not config.has_attention:
        return state, empty_memory(src)  # outputs (B, S, 0): nothing for a decoder to read
    return state, Memory(x, src != PAD)  # x (B, S, H_dec): zeros at PAD


def decode(
    weights: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    tgt_in: np.ndarray,
    state: State,
    memory: Memory | None = None,
) -> tuple[np.ndarray, State]:
    """Teacher-forced decoding: the decoder reads BOS + answer and scores every next token.

    Layer k starts from the hand-off's layer k.  With attention, the top layer's
    outputs h_t attend over ``memory`` and the attentional states h~_t feed the
    output layer.  Logits at PAD positions are unspecified (without attention they
    equal decoder.output.b, since the outputs there are zeros): losses and
    comparisons must mask them.

    Args:
        weights: canonical dict.
        config: the model's sizes and cell.
        tgt_in: (B, T) int decoder input ids, post-padded with PAD.
        state: (h, c) or (h,), each (L, B, H_dec), e.g. from ``encode``.
        memory: ``Memory`` from ``encode(..., return_memory=True)``; needed with
            attention, not read without.

    Returns:
        (logits (B, T, V_tgt), state): the state, like the one given, is each row's
        state at its last real token; a row of all PAD keeps the state it was given.
    """
    logits, state, _ = _decode(weights, config, tgt_in, state, memory)
    return logits, state


def _decode(weights, config, tgt_in, state, memory):
    """``decode``, and the attention weights (B, T, S) (None without attention)."""
    tgt_in = np.asarray(tgt_in)
    lengths = (tgt_in != PAD).sum(axis=1)  # (B,)
    state = tuple(np.asarray(part, np.float64) for part in state)  # each (L, B, H_dec)
    x = np.asarray(weights["decoder.embedding"], np.float64)[tgt_in]  # (B, T, E)
    finals = []
    for layer in recurrent_layers(config, "decoder"):
        params = join_gates(weights, layer.prefix, config.cell)
        start = tuple(part[layer.index] for part in state)  # each (B, H_dec)
        x, final = rnn_layer(config.cell, x, lengths, start, params)  # x (B, T, H_dec)
        finals.append(final)
    a = None
    if config.has_attention:
        x, a = attend(config.attention, weights, x, memory.outputs, memory.mask)  # (B, T, H_dec)
    W = np.asarray(weights["decoder.output.W"], np.float64)  # (V_tgt, H_dec)
    b = np.asarray(weights["decoder.output.b"], np.float64)  # (V_tgt,)
    logits = x @ W.T + b  # (B, T, V_tgt)
    return logits, _gather_parts(finals, np.stack), a


def forward(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray, tgt_in: np.ndarray
) -> np.ndarray:
    """Teacher-forced logits (B, T, V_tgt) for source ids (B, S) and decoder inputs (B, T)."""
    state, memory = encode(weights, config, src, return_memory=True)
    return decode(weights, config, tgt_in, state, memory)[0]


def attention_weights(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray, tgt_in: np.ndarray
) -> np.ndarray:
    """The teacher-forced attention weights (B, T, S): a[b, t, s] is how much step t reads s.

    Each row sums to 1 over the real source positions and is 0 at PAD ones (all 0 for
    an all-PAD source row); rows at PAD positions of ``tgt_in`` are unspecified.
    """
    if not config.has_attention:
        raise ValueError("this model has no attention (config.attention is 'none')")
    state, memory = encode(weights, config, src, return_memory=True)
    return _decode(weights, config, tgt_in, state, memory)[2]


def greedy_decode(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray, max_len: int
) -> np.ndarray:
    """Greedy decoding: feed BOS, then always the most likely token, one step at a time.

    Each step runs the decoder on one token, carrying the state from the step before
    (with attention, the top output attends over the memory), and picks the argmax
    of the logits (ties go to the lowest id, as ``np.argmax``).
    A row's EOS is kept; every later position of that row is PAD.

    Args:
        weights: canonical dict.
        config: the model's sizes and cell.
        src: (B, S) int source ids, post-padded with PAD.
        max_len: number of tokens to produce per row (BOS is not among them).

    Returns:
        (B, max_len) int64 token ids.
    """
    handoff, memory = encode(weights, config, src, return_memory=True)
    state = [list(part) for part in handoff]  # [part][k]: (B, H_dec)
    step = step_function(config.cell)
    layers = [join_gates(weights, layer.prefix, config.cell)
              for layer in recurrent_layers(config, "decoder")]
    embedding = np.asarray(weights["decoder.embedding"], np.float64)  # (V_tgt, E)
    W = np.asarray(weights["decoder.output.W"], np.float64)  # (V_tgt, H_dec)
    b = np.asarray(weights["decoder.output.b"], np.float64)  # (V_tgt,)
    batch = len(src)
    tokens = np.full((batch, max_len), PAD, dtype=np.int64)  # (B, max_len)
    previous = np.full(batch, BOS, dtype=np.int64)  # (B,): every answer starts after BOS
    finished = np.zeros(batch, dtype=bool)  # (B,): has this row produced EOS yet?
    for t in range(max_len):
        x = embedding[previous]  # (B, E)
        for k, params in enumerate(layers):
            new = step(x, tuple(part[k] for part in state), *params)  # each (B, H_dec)
            for part, value in zip(state, new, strict=True):
                part[k] = value
            x = new[0]  # the layer above reads this layer's output h
        if config.has_attention:  # one step: T = 1
            x = attend(config.attention, weights, x[:, None], *memory)[0][:, 0]  # (B, H_dec)
        logits = x @ W.T + b  # (B, V_tgt)
        logits[:, [PAD, BOS]] = -np.inf  # never generated: PAD fills, BOS starts
        chosen = np.argmax(logits, axis=1)  # (B,)
        tokens[:, t] = np.where(finished, PAD, chosen)
        finished |= chosen == EOS
        if finished.all():
            break  # the remaining columns are already PAD
        previous = chosen
    return tokens
