"""Attention, written once: the equations, the canonical weight names, and the decoder's memory.

Without attention the decoder sees the question only through the hand-off, one
fixed-size state (the "thought vector").  With attention it also looks back, at
every step, at every encoder output h_s: it scores each source position against
its own output h_t, turns the scores into weights a_t that sum to 1 over the
real source tokens, and reads their weighted mean, the context c_t:

    score(h_t, h_s) = h_t^T W_a h_s                      "luong" (multiplicative, Luong's
                                                         "general" score)
    score(h_t, h_s) = v_a^T tanh(W_1 h_t + W_2 h_s)      "bahdanau" (additive)
    a_t(s)  = exp(score(h_t, h_s)) / sum_s' exp(score(h_t, h_s'))    over real s, s' only
    c_t     = sum_s a_t(s) h_s
    h~_t    = tanh(W_c [c_t; h_t])                       the attentional hidden state
    logits  = W_out h~_t + b_out                         (decoder.output, as without attention)

h_t (H_dec) is the top decoder layer's output at step t, h_s (H_dec = D*H) the
top encoder layer's output at source position s, directions side by side.
[c_t; h_t] puts the context FIRST: W_c's first H_dec columns multiply c_t.  No
projection has a bias, as in both papers.

Where both kinds attend from (a choice, the same for both): h_t, the decoder's
output after its recurrent step (Luong et al. 2015, without input feeding).
Bahdanau et al. (2014) scored the previous state s_{t-1} and fed c_t into the
recurrent layer's input; then every step would need the attention of the step
before, and teacher forcing could no longer run the recurrent layers over the
whole answer at once (Keras's LSTM/GRU layers, PyTorch's packed nn.LSTM/nn.GRU),
so both frameworks would need a hand-written step loop.  Attending from h_t
keeps the recurrent layers, their state and the hand-off exactly those of the
model without attention, and the two kinds differ in the score alone.

The canonical names (``attention_shapes``), in this order:

    luong      decoder.attention.W_a   (H_dec, H_dec)
               decoder.attention.W_c   (H_dec, 2*H_dec)
    bahdanau   decoder.attention.W_1   (H_dec, H_dec)      applied to h_t
               decoder.attention.W_2   (H_dec, H_dec)      applied to h_s
               decoder.attention.v_a   (H_dec,)
               decoder.attention.W_c   (H_dec, 2*H_dec)

Each W is (out, in), applied as W x (PyTorch's ``nn.Linear.weight``).

Masking: PAD source positions never receive attention; their scores are -inf
before the softmax (Keras's layers subtract 1e9, which gives the same weight, 0,
in float32).  A source row of nothing but PAD has no position to attend to: its
weights are all 0 and its context is 0, so h~_t = tanh(W_c [0; h_t]) -- never
NaN, in the forward pass or the gradients.  Weights at PAD positions of the
decoder's input are unspecified, like the logits there.

Shape legend: B batch, S source length, T target length, H_dec = D*H decoder hidden.
"""

from __future__ import annotations

from shared.core.config import ATTENTIONS, Seq2SeqConfig

__all__ = ["ATTENTIONS", "PREFIX", "attention_shapes"]

PREFIX = "decoder.attention"


def attention_shapes(config: Seq2SeqConfig) -> dict[str, tuple[int, ...]]:
    """The canonical names and shapes of ``config``'s attention weights ({} without attention)."""
    H = config.decoder_hidden_size
    square, combine = (H, H), (H, 2 * H)
    pieces = {
        "none": {},
        "luong": {"W_a": square, "W_c": combine},
        "bahdanau": {"W_1": square, "W_2": square, "v_a": (H,), "W_c": combine},
    }[config.attention]
    return {f"{PREFIX}.{piece}": shape for piece, shape in pieces.items()}
