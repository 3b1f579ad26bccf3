"""The decoder's attention in Keras 3: the mirror of ``torch_impl/attention.py``.

``shared.layout.attention`` has the equations and the reasons; in short, from the top
decoder layer's outputs h_t (B, T, H_dec) and the memory h_s (B, S, H_dec):

    luong      score = h_t^T W_a h_s
    bahdanau   score = v_a^T tanh(W_1 h_t + W_2 h_s)
    a = softmax over real s;  c = a h_s;  h~ = tanh(W_c [c; h_t])

Keras's built-in layers compute the scores only with a projection in front:

- ``layers.Attention(score_mode="dot")`` scores query . key, with no W_a.  Given
  [query=h_t, value=h_s, key=W_a h_s] it scores h_t . (W_a h_s) = h_t^T W_a h_s:
  Luong's "general" score, with W_a a bias-free ``Dense`` in front of the key.
  (``score_mode="concat"`` is sum(tanh(q + k)) with one scalar weight: neither kind.)
- ``layers.AdditiveAttention`` scores sum(scale * tanh(query + key)): no W_1, no
  W_2, and its ``scale`` (H_dec,) is v_a.  Given [query=W_1 h_t, value=h_s,
  key=W_2 h_s] it scores v_a^T tanh(W_1 h_t + W_2 h_s): Bahdanau's score, with two
  bias-free ``Dense`` layers in front.

Both then take the softmax over S and the weighted mean of the values.  The
source mask goes in as ``mask=[None, value_mask]``: Keras subtracts 1e9 from a
masked score (exp gives exactly 0 in float32, as -inf would).  A query mask
would only zero the outputs at PAD target positions, which are unspecified
anyway.  In a row with no real source token every score becomes score - 1e9,
which float32 rounds to -1e9 itself, and the softmax spreads the weight evenly
over the PAD positions; such rows are zeroed here, weights and context, by the
rule of ``shared.layout.attention``.
W_c is a bias-free ``Dense`` with tanh on [c; h_t].

Each ``Dense`` kernel is (in, out), the transpose of the canonical W (out, in).

Shapes: B batch, S source length, T target length, H_dec decoder hidden.
"""

from __future__ import annotations

from keras import layers, ops


class DecoderAttention(layers.Layer):
    """Luong or Bahdanau attention over the memory; layer names map to canonical names.

    ``W_a`` -> ``decoder.attention.W_a`` (luong); ``W_1``, ``W_2``, ``score.scale``
    -> ``decoder.attention.W_1``, ``W_2``, ``v_a`` (bahdanau); ``W_c`` ->
    ``decoder.attention.W_c``.

    Args:
        kind: "luong" or "bahdanau".
        hidden: H_dec.
    """

    def __init__(self, kind: str, hidden: int, **kwargs):
        super().__init__(**kwargs)
        self.kind, self.hidden = kind, hidden
        # h_t comes with the target's PAD mask (Embedding(mask_zero=True)); h~ keeps it.
        self.supports_masking = True
        if kind == "luong":
            self.W_a = layers.Dense(hidden, use_bias=False, name="W_a")
            self.score = layers.Attention(score_mode="dot", use_scale=False, name="score")
        else:
            self.W_1 = layers.Dense(hidden, use_bias=False, name="W_1")
            self.W_2 = layers.Dense(hidden, use_bias=False, name="W_2")
            self.score = layers.AdditiveAttention(use_scale=True, name="score")  # scale = v_a
        self.W_c = layers.Dense(hidden, use_bias=False, activation="tanh", name="W_c")

    def build(self, input_shape=None):
        sequence = (None, None, self.hidden)                                 # (B, T or S, H_dec)
        for projection in ("W_a", "W_1", "W_2"):
            if hasattr(self, projection):
                getattr(self, projection).build(sequence)
        self.score.build([sequence, sequence, sequence])
        self.W_c.build((None, None, 2 * self.hidden))                         # (B, T, 2 H_dec)

    def call(self, h_t, h_s, source_mask):
        """(h~ (B, T, H_dec), a (B, T, S)) for h_t (B, T, H_dec), h_s (B, S, H_dec), mask (B, S).

        The source mask is not called ``mask``: Keras reads a ``mask`` argument as
        the mask of the inputs and attaches it to the output, and the output's mask
        is the target's (T positions), not the source's (S).
        """
        mask = source_mask
        if self.kind == "luong":
            query, key = h_t, self.W_a(h_s)                        # (B, T, H_dec), (B, S, H_dec)
        else:
            query, key = self.W_1(h_t), self.W_2(h_s)              # (B, T, H_dec), (B, S, H_dec)
        context, a = self.score([query, h_s, key], mask=[None, mask],
                                return_attention_scores=True)       # (B, T, H_dec), (B, T, S)
        # An all-PAD source row has nothing to attend to: weights 0, context 0.
        any_real = ops.reshape(ops.any(mask, axis=1), (-1, 1, 1))   # (B, 1, 1)
        context = ops.where(any_real, context, 0.0)                 # (B, T, H_dec)
        a = ops.where(any_real, a, 0.0)                             # (B, T, S)
        return self.W_c(ops.concatenate([context, h_t], axis=-1)), a    # (B, T, H_dec)
