"""The model written out in NumPy, float64: the ground truth both backends are checked against.

Nothing here is fast; everything is meant to be read.  The parity tests climb a
ladder with it: one cell step (``lstm_cell``), one masked layer (``lstm_layer``),
the encoder's hand-off (``encode``), teacher-forced logits (``decode``,
``forward``) and greedy tokens (``greedy_decode``).

One LSTM step, gates stacked i, f, g, o as in PyTorch (σ is the logistic sigmoid):

    i  = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate: how much new content to write
    f  = σ(W_if x + b_if + W_hf h + b_hf)      forget gate: how much of the old cell to keep
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate content
    o  = σ(W_io x + b_io + W_ho h + b_ho)      output gate: how much of the cell to show
    c' = f * c + i * g                         the new cell state
    h' = o * tanh(c')                          the new hidden state, also the step's output

Rows are post-padded with PAD; a row's length is its number of non-PAD ids.  A
padded step changes nothing: the state passes through and the output is zeros,
so every row ends in the state of its last real token, whatever the batch width.

Weights come as a canonical dict (``shared.layout``); inputs are assumed valid
(the backends validate them).

Shape legend: B batch, S source length, T target length, E embedding, H hidden
(one direction), H_dec = D*H decoder hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shared.config import Seq2SeqConfig
from shared.layout import join_gates, layer_prefix
from shared.tokenizer import BOS, EOS, PAD


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x), computed as (1 + tanh(x / 2)) / 2: equal, and never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def lstm_cell(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step for a batch, in float64.

    Args:
        x: (B, in) this step's inputs.
        h: (B, H) previous hidden state.
        c: (B, H) previous cell state.
        W_ih: (4H, in), gates stacked i, f, g, o.
        W_hh: (4H, H).
        b_ih: (4H,).
        b_hh: (4H,).

    Returns:
        (h', c'), each (B, H) float64.
    """
    x, h, c = (np.asarray(a, np.float64) for a in (x, h, c))
    W_ih, W_hh, b_ih, b_hh = (np.asarray(a, np.float64) for a in (W_ih, W_hh, b_ih, b_hh))
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, f, g, o = np.split(gates, 4, axis=1)  # each (B, H)
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c_next = f * c + i * g  # (B, H)
    h_next = o * np.tanh(c_next)  # (B, H)
    return h_next, c_next


def _reverse_real(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse the first lengths[b] steps of each row b along axis 1; padding stays put.

    Applying it twice gives ``x`` back.
    """
    reversed_x = x.copy()
    for row, length in enumerate(lengths):
        reversed_x[row, :length] = x[row, :length][::-1]
    return reversed_x


def lstm_layer(
    x: np.ndarray,
    lengths: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One LSTM layer over a padded batch, one direction.

    A step t >= lengths[b] is padding for row b: its state passes through unchanged
    and its output is zeros.  With ``reverse=True`` each row is read from its LAST
    REAL token back to its first (not from T - 1, which may be padding), and the
    outputs are put back in input order: outputs[b, t] belongs to input x[b, t].

    Args:
        x: (B, T, in) inputs.
        lengths: (B,) real steps per row, 0 <= lengths[b] <= T.
        h0: (B, H) initial hidden state.
        c0: (B, H) initial cell state.
        W_ih, W_hh, b_ih, b_hh: the layer's weights, as in ``lstm_cell``.
        reverse: read each row's real steps backwards.

    Returns:
        (outputs (B, T, H), (h, c) each (B, H)): h at every real step, zeros at padding;
        the state after each row's last step read.
    """
    x = np.asarray(x, np.float64)
    lengths = np.asarray(lengths)
    assert lengths.shape == (x.shape[0],) and np.all((lengths >= 0) & (lengths <= x.shape[1]))
    if reverse:
        # Reading backwards is reading forwards on each row's real steps reversed.
        outputs, state = lstm_layer(
            _reverse_real(x, lengths), lengths, h0, c0, W_ih, W_hh, b_ih, b_hh
        )
        return _reverse_real(outputs, lengths), state
    h = np.array(h0, np.float64)  # (B, H)
    c = np.array(c0, np.float64)  # (B, H)
    outputs = np.zeros((x.shape[0], x.shape[1], h.shape[1]))  # (B, T, H)
    for t in range(x.shape[1]):
        h_next, c_next = lstm_cell(x[:, t], h, c, W_ih, W_hh, b_ih, b_hh)  # (B, H) each
        real = (t < lengths)[:, None]  # (B, 1): is step t a real token of this row?
        h = np.where(real, h_next, h)
        c = np.where(real, c_next, c)
        outputs[:, t] = np.where(real, h_next, 0.0)
    return outputs, (h, c)


def encode(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's hand-off: each layer's final (h, c), directions concatenated.

    Layer 0 reads the source embeddings; layer k > 0 reads layer k-1's outputs, the
    forward and backward outputs side by side.  Each layer hands the decoder
    h = [h_forward, h_backward] and c = [c_forward, c_backward] along the feature
    axis, which is why the decoder is D*H wide.  An all-PAD row hands off zeros.

    Args:
        weights: canonical dict.
        config: the model's sizes.
        src: (B, S) int source ids, post-padded with PAD.

    Returns:
        (h, c), each (L, B, H_dec) float64.
    """
    src = np.asarray(src)
    lengths = (src != PAD).sum(axis=1)  # (B,)
    batch = src.shape[0]
    x = np.asarray(weights["encoder.embedding"], np.float64)[src]  # (B, S, E)
    zeros = np.zeros((batch, config.hidden_size))  # (B, H): every layer starts from rest
    h_layers, c_layers = [], []
    for k in range(config.num_layers):
        outputs, h_directions, c_directions = [], [], []
        for direction in ("forward", "backward")[: config.num_directions]:
            params = join_gates(weights, layer_prefix("encoder", k, direction))
            out, (h, c) = lstm_layer(
                x, lengths, zeros, zeros, *params, reverse=direction == "backward"
            )  # out (B, S, H); h, c (B, H)
            outputs.append(out)
            h_directions.append(h)
            c_directions.append(c)
        x = np.concatenate(outputs, axis=-1)  # (B, S, D*H): the next layer's input
        h_layers.append(np.concatenate(h_directions, axis=-1))  # (B, H_dec)
        c_layers.append(np.concatenate(c_directions, axis=-1))  # (B, H_dec)
    return np.stack(h_layers), np.stack(c_layers)  # (L, B, H_dec) each


def decode(
    weights: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    tgt_in: np.ndarray,
    state: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Teacher-forced decoding: the decoder reads BOS + answer and scores every next token.

    Layer k starts from the hand-off's layer k.  Logits at PAD positions are
    unspecified (here they equal decoder.output.b, since the outputs there are
    zeros): losses and comparisons must mask them.

    Args:
        weights: canonical dict.
        config: the model's sizes.
        tgt_in: (B, T) int decoder input ids, post-padded with PAD.
        state: (h, c), each (L, B, H_dec), e.g. from ``encode``.

    Returns:
        (logits (B, T, V_tgt), (h, c) each (L, B, H_dec)): the state is each row's state
        at its last real token; a row of all PAD keeps the state it was given.
    """
    tgt_in = np.asarray(tgt_in)
    lengths = (tgt_in != PAD).sum(axis=1)  # (B,)
    h0, c0 = (np.asarray(s, np.float64) for s in state)  # (L, B, H_dec) each
    x = np.asarray(weights["decoder.embedding"], np.float64)[tgt_in]  # (B, T, E)
    h_layers, c_layers = [], []
    for k in range(config.num_layers):
        params = join_gates(weights, layer_prefix("decoder", k))
        x, (h, c) = lstm_layer(x, lengths, h0[k], c0[k], *params)  # x (B, T, H_dec)
        h_layers.append(h)
        c_layers.append(c)
    W = np.asarray(weights["decoder.output.W"], np.float64)  # (V_tgt, H_dec)
    b = np.asarray(weights["decoder.output.b"], np.float64)  # (V_tgt,)
    logits = x @ W.T + b  # (B, T, V_tgt)
    return logits, (np.stack(h_layers), np.stack(c_layers))


def forward(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray, tgt_in: np.ndarray
) -> np.ndarray:
    """Teacher-forced logits (B, T, V_tgt) for source ids (B, S) and decoder inputs (B, T)."""
    return decode(weights, config, tgt_in, encode(weights, config, src))[0]


def greedy_decode(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray, max_len: int
) -> np.ndarray:
    """Greedy decoding: feed BOS, then always the most likely token, one step at a time.

    Each step runs the decoder on one token, carrying (h, c) from the step before,
    and picks the argmax of the logits (ties go to the lowest id, as ``np.argmax``).
    A row's EOS is kept; every later position of that row is PAD.

    Args:
        weights: canonical dict.
        config: the model's sizes.
        src: (B, S) int source ids, post-padded with PAD.
        max_len: number of tokens to produce per row (BOS is not among them).

    Returns:
        (B, max_len) int64 token ids.
    """
    h, c = encode(weights, config, src)  # (L, B, H_dec) each
    layers = [join_gates(weights, layer_prefix("decoder", k)) for k in range(config.num_layers)]
    embedding = np.asarray(weights["decoder.embedding"], np.float64)  # (V_tgt, E)
    W = np.asarray(weights["decoder.output.W"], np.float64)  # (V_tgt, H_dec)
    b = np.asarray(weights["decoder.output.b"], np.float64)  # (V_tgt,)
    batch = h.shape[1]
    tokens = np.full((batch, max_len), PAD, dtype=np.int64)  # (B, max_len)
    previous = np.full(batch, BOS, dtype=np.int64)  # (B,): every answer starts after BOS
    finished = np.zeros(batch, dtype=bool)  # (B,): has this row produced EOS yet?
    for t in range(max_len):
        x = embedding[previous]  # (B, E)
        for k, params in enumerate(layers):
            h[k], c[k] = lstm_cell(x, h[k], c[k], *params)  # (B, H_dec) each
            x = h[k]  # the layer above reads this layer's output
        logits = x @ W.T + b  # (B, V_tgt)
        logits[:, [PAD, BOS]] = -np.inf  # never generated: PAD fills, BOS starts
        chosen = np.argmax(logits, axis=1)  # (B,)
        tokens[:, t] = np.where(finished, PAD, chosen)
        finished |= chosen == EOS
        if finished.all():
            break  # the remaining columns are already PAD
        previous = chosen
    return tokens
