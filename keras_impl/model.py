"""The encoder-decoder LSTM in Keras 3: the mirror of ``torch_impl/model.py``.

Shapes: B batch, S source length, T target length, E embedding, H hidden
(per encoder direction), H_dec = D*H decoder hidden, L layers, D directions,
V vocabulary.

The algorithm, in words:

1. The encoder embeds the question and reads it with L stacked LSTMs
   (many-to-one).  Its final (h, c) of every layer, taken at each question's
   last real token, is the hand-off.  Both h AND c are handed over: h alone
   would throw away the cell state, the LSTM's long-term memory.
2. The decoder is another L-layer LSTM with its own weights whose initial
   state is the hand-off.  During training it reads BOS + answer and learns to
   predict answer + EOS (many-to-many, teacher forcing: the target is ahead of
   the input by one step).
3. A dense layer turns each decoder output into target-vocabulary logits.

Each LSTM step, gates in the order i, f, c, o (Keras's names; our g is its c):

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g
    h' = o * tanh(c')

Keras stores them side by side and transposed: ``cell.kernel`` (in, 4H) =
[W_ii|W_if|W_ig|W_io]^T, ``cell.recurrent_kernel`` (H, 4H), and ONE bias (4H,),
the sum b_i* + b_h*.  ``Bidirectional`` keeps two copies of the layer,
``forward_layer`` and ``backward_layer``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from shared import PAD, Seq2SeqConfig


class Seq2Seq(keras.Model):
    """Encoder-decoder LSTM; layer names map one-to-one to canonical names.

    ``encoder_embedding`` -> ``encoder.embedding``,
    ``encoder_lstm`` [k] (``forward_layer``, ``backward_layer``)
        -> ``encoder.layers.{k}.{forward|backward}``,
    ``decoder_embedding`` -> ``decoder.embedding``,
    ``decoder_lstm`` [k] -> ``decoder.layers.{k}.forward``,
    ``decoder_output`` -> ``decoder.output``.

    Args:
        config: the sizes (``shared.Seq2SeqConfig``).
    """

    def __init__(self, config: Seq2SeqConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        H, E, L = config.hidden_size, config.embedding_dim, config.num_layers
        H_dec = config.decoder_hidden_size
        # mask_zero=True makes PAD (id 0) a masked step: the LSTM keeps its state there.
        self.encoder_embedding = layers.Embedding(
            config.src_vocab_size, E, mask_zero=True, name="encoder_embedding"
        )
        # Keras keeps a list of L layers; PyTorch stacks them in one nn.LSTM.
        self.encoder_lstm = [self._encoder_layer(k, H) for k in range(L)]
        self.decoder_embedding = layers.Embedding(
            config.tgt_vocab_size, E, mask_zero=True, name="decoder_embedding"
        )
        self.decoder_lstm = [
            layers.LSTM(H_dec, return_sequences=True, return_state=True, name=f"decoder_lstm_{k}")
            for k in range(L)
        ]
        # Dropout between stacked layers, as nn.LSTM(dropout=...) does.
        self.between_layers = layers.Dropout(config.dropout, name="between_layers")
        self.decoder_output = layers.Dense(config.tgt_vocab_size, name="decoder_output")

    def _encoder_layer(self, k: int, H: int) -> layers.Layer:
        lstm = layers.LSTM(H, return_sequences=True, return_state=True, name=f"encoder_lstm_{k}")
        if self.config.bidirectional:
            return layers.Bidirectional(lstm, name=f"encoder_bilstm_{k}")
        return lstm

    def encode(self, src, training=False):
        """Read the question; return the hand-off (h, c), each (L, B, H_dec).

        Args:
            src: int (B, S), post-padded with PAD.  A row of only PAD gives zeros.
        """
        mask = ops.not_equal(src, PAD)                                      # (B, S)
        x = self.encoder_embedding(src)                                     # (B, S, E)
        hs, cs = [], []
        for k, lstm in enumerate(self.encoder_lstm):
            if k > 0:
                x = self.between_layers(x, training=training)               # (B, S, D*H)
            # Keras masks; PyTorch packs: both end each row at its last real token.
            if self.config.bidirectional:
                # [output, h_fw, c_fw, h_bw, c_bw]: the hand-off is concat([forward, backward]).
                x, h_fw, c_fw, h_bw, c_bw = lstm(x, mask=mask, training=training)
                h = ops.concatenate([h_fw, h_bw], axis=-1)                  # (B, H_dec)
                c = ops.concatenate([c_fw, c_bw], axis=-1)                  # (B, H_dec)
            else:
                # return_state=True gives [output, h, c]: h first, then c (TF1 was (c, h)).
                x, h, c = lstm(x, mask=mask, training=training)             # (B, S, H), (B, H) x2
            hs.append(h)
            cs.append(c)
        return ops.stack(hs), ops.stack(cs)                                 # each (L, B, H_dec)

    def decode(self, tgt_in, h, c, training=False):
        """Run the decoder from state (h, c); return (logits, h, c).

        Args:
            tgt_in: int (B, T), BOS + answer, post-padded with PAD.  T = 1 is one
                generation step.
            h, c: the initial state, each (L, B, H_dec): the hand-off, or the state
                returned by the previous step.

        Returns:
            logits (B, T, V_tgt) and the decoder's final (h, c), each (L, B, H_dec),
            taken at each row's last real token.  Logits at PAD positions are
            unspecified: Keras repeats the last real step's output there, packed
            PyTorch gives the output bias.  Compare and train only on real positions.
        """
        mask = ops.not_equal(tgt_in, PAD)                                   # (B, T)
        y = self.decoder_embedding(tgt_in)                                  # (B, T, E)
        hs, cs = [], []
        for k, lstm in enumerate(self.decoder_lstm):
            if k > 0:
                y = self.between_layers(y, training=training)               # (B, T, H_dec)
            # initial_state=[h, c] sets where the decoder starts: the hand-off.
            # A masked (PAD) step keeps the state, so an all-PAD row keeps (h, c).
            y, h_k, c_k = lstm(y, initial_state=[h[k], c[k]], mask=mask, training=training)
            # y (B, T, H_dec); h_k, c_k (B, H_dec)
            hs.append(h_k)
            cs.append(c_k)
        logits = self.decoder_output(y)                                     # (B, T, V_tgt)
        return logits, ops.stack(hs), ops.stack(cs)

    def call(self, inputs, training=False):
        """Teacher-forced logits (B, T, V_tgt) for inputs (src, tgt_in)."""
        src, tgt_in = inputs
        h, c = self.encode(src, training=training)                          # each (L, B, H_dec)
        logits, _, _ = self.decode(tgt_in, h, c, training=training)         # (B, T, V_tgt)
        return logits
