"""The encoder-decoder in Keras 3: the mirror of ``torch_impl/model.py``.

Shapes: B batch, S source length, T target length, E embedding, H hidden
(per encoder direction), H_dec = D*H decoder hidden, L layers, D directions,
V vocabulary.

The algorithm, in words:

1. The encoder embeds the question and reads it with L stacked recurrent layers
   (many-to-one).  Its final state of every layer, taken at each question's
   last real token, is the hand-off.  An LSTM's state is (h, c) and both are
   handed over: h alone would throw away the cell state, the LSTM's long-term
   memory.  A GRU's state is h alone: it has no separate cell.
2. The decoder is another L-layer stack with its own weights whose initial
   state is the hand-off.  During training it reads BOS + answer and learns to
   predict answer + EOS (many-to-many, teacher forcing: the target is ahead of
   the input by one step).
3. A dense layer turns each decoder output into target-vocabulary logits.
   With attention (``config.attention``), the top decoder layer's outputs first
   look back at every encoder output (the memory) and the attentional states
   h~ = tanh(W_c [context; h_t]) feed that layer instead (``keras_impl.attention``).

The cells (``shared.layout.gates`` has the canonical equations and every layout):

    LSTM, gates in Keras's order i, f, c, o (our g is its c):
        i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g                        h' = o * tanh(c')
    GRU(reset_after=True), gates in Keras's order z, r, h (our n is its h):
        z = σ(W_iz x + b_iz + W_hz h + b_hz)      r = σ(W_ir x + b_ir + W_hr h + b_hr)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

Keras stores each cell's gates side by side and transposed: ``cell.kernel``
(in, G*H), ``cell.recurrent_kernel`` (H, G*H) with G = 4 (LSTM) or 3 (GRU);
an LSTM has ONE bias (4H,), the sum b_i* + b_h*, a GRU two, ``bias`` (2, 3H) =
[input; recurrent].  ``Bidirectional`` keeps two copies of the layer,
``forward_layer`` and ``backward_layer``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from keras_impl import per_backend
from keras_impl.attention import DecoderAttention
from shared import PAD, Seq2SeqConfig

# One Keras layer per cell kind; the rest of the model reads the same for both.
RNN_LAYERS = {
    "lstm": lambda H, name: layers.LSTM(
        H, return_sequences=True, return_state=True, name=name
    ),
    # reset_after=True (Keras's default) is the GRU PyTorch computes: two biases.
    "gru": lambda H, name: layers.GRU(
        H, return_sequences=True, return_state=True, reset_after=True, name=name
    ),
}


class Seq2Seq(keras.Model):
    """Encoder-decoder LSTM or GRU; layer names map one-to-one to canonical names.

    ``encoder_embedding`` -> ``encoder.embedding``,
    ``encoder_rnn`` [k] (``forward_layer``, ``backward_layer``)
        -> ``encoder.layers.{k}.{forward|backward}``,
    ``decoder_embedding`` -> ``decoder.embedding``,
    ``decoder_rnn`` [k] -> ``decoder.layers.{k}.forward``,
    ``decoder_attention`` -> ``decoder.attention`` (with attention only),
    ``decoder_output`` -> ``decoder.output``.

    Args:
        config: the sizes and the cell (``shared.Seq2SeqConfig``).
    """

    def __init__(self, config: Seq2SeqConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        H, E, L = config.hidden_size, config.embedding_dim, config.num_layers
        H_dec = config.decoder_hidden_size
        # mask_zero=True attaches a PAD (id 0) mask to the embedding's output, as in
        # keras-io, but a layer also given initial_state= ignores it (see decode), so
        # every recurrent layer gets mask= explicitly.  The PAD row is not zeroed.
        self.encoder_embedding = layers.Embedding(
            config.src_vocab_size, E, mask_zero=True, name="encoder_embedding"
        )
        # Keras keeps a list of L layers; PyTorch stacks them in one nn.LSTM / nn.GRU.
        self.encoder_rnn = [self._encoder_layer(k, H) for k in range(L)]
        self.decoder_embedding = layers.Embedding(
            config.tgt_vocab_size, E, mask_zero=True, name="decoder_embedding"
        )
        self.decoder_rnn = [
            RNN_LAYERS[config.cell](H_dec, f"decoder_{config.cell}_{k}") for k in range(L)
        ]
        # Dropout between stacked layers, as nn.LSTM(dropout=...) does.
        self.between_layers = layers.Dropout(config.dropout, name="between_layers")
        self.decoder_attention = None
        if config.has_attention:
            self.decoder_attention = DecoderAttention(
                config.attention, H_dec, name="decoder_attention"
            )
        self.decoder_output = layers.Dense(config.tgt_vocab_size, name="decoder_output")

    def build(self, input_shape=None):
        """Create every weight from the config's sizes, in the order a first call would.

        Keras creates weights when a layer is built (PyTorch when a module is
        constructed); building from shapes spares a dummy forward pass.
        """
        E, H_dec = self.config.embedding_dim, self.config.decoder_hidden_size
        self.encoder_embedding.build()
        for k, rnn in enumerate(self.encoder_rnn):
            rnn.build((None, None, E if k == 0 else H_dec))       # (B, S, E) or (B, S, D*H)
        self.decoder_embedding.build()
        for k, rnn in enumerate(self.decoder_rnn):
            rnn.build((None, None, E if k == 0 else H_dec))       # (B, T, E) or (B, T, H_dec)
        if self.decoder_attention is not None:
            self.decoder_attention.build()
        self.decoder_output.build((None, None, H_dec))            # (B, T, H_dec)

    def _encoder_layer(self, k: int, H: int) -> layers.Layer:
        cell = self.config.cell
        rnn = RNN_LAYERS[cell](H, f"encoder_{cell}_{k}")
        if self.config.bidirectional:
            with per_backend.no_tensorflow_import():  # Keras would import it to copy rnn
                return layers.Bidirectional(rnn, name=f"encoder_bi{cell}_{k}")
        return rnn

    def _run(self, rnn, x, mask, initial_state=None, training=False):
        """One recurrent layer over x; returns (outputs, state parts, directions concatenated).

        Keras returns [output, *state]: [output, h, c] for an LSTM (h first, then c;
        TF1 was (c, h)), [output, h] for a GRU, and a Bidirectional layer the forward
        state then the backward one, [output, h_fw, c_fw, h_bw, c_bw].
        """
        # Keras masks; PyTorch packs: both end each row at its last real token.
        outputs = rnn(x, initial_state=initial_state, mask=mask, training=training)
        y, state = outputs[0], list(outputs[1:])                          # y (B, T, D*H)
        n = len(self.config.state_names)
        if len(state) > n:  # Bidirectional: the hand-off is concat([forward, backward])
            state = [ops.concatenate([fw, bw], axis=-1)                   # (B, D*H)
                     for fw, bw in zip(state[:n], state[n:], strict=True)]
        return y, state

    def encode(self, src, training=False, return_memory=False, initial_state=None):
        """Read the question; return the hand-off, (h, c) or (h,), each (L, B, H_dec).

        Args:
            src: int (B, S), post-padded with PAD.  A row of only PAD gives zeros.
            return_memory: also return what attention reads, (outputs, mask): the
                top layer's outputs (B, S, H_dec), zeros at PAD, and src != PAD (B, S).
            initial_state: None (zeros), or (h, c) / (h,), each (L, B, H): where each
                layer starts, to read a long source chunk by chunk (unidirectional
                only); a row of only PAD then hands off the state it was given.
        """
        mask = ops.not_equal(src, PAD)                                      # (B, S)
        x = self.encoder_embedding(src)                                     # (B, S, E)
        per_layer = []
        for k, rnn in enumerate(self.encoder_rnn):
            if k > 0:
                x = self.between_layers(x, training=training)               # (B, S, D*H)
            start = None if initial_state is None else [part[k] for part in initial_state]
            x, state = self._run(rnn, x, mask, start, training=training)    # (B, S, D*H)
            per_layer.append(state)
        state = _stack_layers(per_layer)                                    # each (L, B, H_dec)
        if not return_memory:
            return state
        # A masked step repeats the last output (Bidirectional: zeros); attention never
        # reads it, and zeros make the memory the same in every framework.
        outputs = ops.where(ops.expand_dims(mask, -1), x, 0.0)             # (B, S, H_dec)
        return state, (outputs, mask)

    def decode(self, tgt_in, state, memory=None, training=False, return_attention=False):
        """Run the decoder from ``state``; return (logits, state).

        Args:
            tgt_in: int (B, T), BOS + answer, post-padded with PAD.  T = 1 is one
                generation step.
            state: the initial state, (h, c) or (h,), each (L, B, H_dec): the
                hand-off, or the state returned by the previous step.
            memory: (outputs (B, S, H_dec), mask (B, S)) from ``encode``; read only
                with attention.
            return_attention: also return the attention weights (B, T, S).

        Returns:
            logits (B, T, V_tgt) and the decoder's final state, like ``state``,
            taken at each row's last real token (and the weights, if asked).
            Logits at PAD positions are unspecified: Keras repeats the last real
            step's output there, packed PyTorch gives the output bias (without
            attention).  Compare and train only on real positions.
        """
        mask = ops.not_equal(tgt_in, PAD)                                   # (B, T)
        y = self.decoder_embedding(tgt_in)                                  # (B, T, E)
        finals = []
        for k, rnn in enumerate(self.decoder_rnn):
            if k > 0:
                y = self.between_layers(y, training=training)               # (B, T, H_dec)
            # initial_state sets where the decoder starts: the hand-off.  mask= must be
            # explicit here: Keras 3 fills a layer's `mask` from the embedding only when
            # the call has ONE tensor argument (keras/src/layers/layer.py), so with
            # initial_state= the mask_zero mask is silently dropped and the final state
            # is the state after the padding (docs/examples/09_initial_state_mask_trap.py).
            # A masked (PAD) step keeps the state, so an all-PAD row keeps its state.
            y, final = self._run(rnn, y, mask, [part[k] for part in state], training)
            finals.append(final)                                            # y (B, T, H_dec)
        weights = None
        if self.decoder_attention is not None:  # h~ = tanh(W_c [context; h_t]) replaces h_t
            y, weights = self.decoder_attention(y, *memory)                 # (B, T, H_dec)
        logits = self.decoder_output(y)                                     # (B, T, V_tgt)
        if return_attention:
            return logits, _stack_layers(finals), weights                   # weights (B, T, S)
        return logits, _stack_layers(finals)

    def call(self, inputs, training=False):
        """Teacher-forced logits (B, T, V_tgt) for inputs (src, tgt_in)."""
        src, tgt_in = inputs
        state, memory = self.encode(src, training=training, return_memory=True)
        logits, _ = self.decode(tgt_in, state, memory, training=training)   # (B, T, V_tgt)
        return logits


def _stack_layers(per_layer: list) -> tuple:
    """[[h_0, c_0], [h_1, c_1], ...] -> (h, c), each part stacked to (L, B, H_dec)."""
    return tuple(ops.stack([state[j] for state in per_layer]) for j in range(len(per_layer[0])))
