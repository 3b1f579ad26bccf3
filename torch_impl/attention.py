"""The decoder's attention in PyTorch: the mirror of ``keras_impl/attention.py``.

``shared.layout.attention`` has the equations and the reasons; in short, from the top
decoder layer's outputs h_t (B, T, H_dec) and the memory h_s (B, S, H_dec):

    luong      score = h_t^T W_a h_s
    bahdanau   score = v_a^T tanh(W_1 h_t + W_2 h_s)
    a = softmax over real s;  c = a h_s;  h~ = tanh(W_c [c; h_t])

PyTorch has no layer for either score: ``nn.MultiheadAttention`` with one head
scores (W_q h_t) . (W_k h_s) / sqrt(H_dec) and projects the values and the output
too (W_v, out_proj): a factored, scaled W_a and two more matrices, not Luong's
parameters.  So each projection is a bias-free ``nn.Linear`` and the rest is
torch ops, as in the PyTorch translation tutorial's ``AttnDecoderRNN``.

PAD source positions get the score -inf (``masked_fill``), which the softmax
turns into weight 0.  A row with no real source token would be all -inf, whose
softmax is NaN, and NaN would leak into the gradients: such rows are left
unmasked for the softmax and then zeroed, weights and context, by the rule of
``shared.layout.attention``.

Each ``nn.Linear.weight`` (out, in) is the canonical W as it is; v_a is the
weight (1, H_dec) of the bias-free ``nn.Linear`` that takes v_a^T x.

Shapes: B batch, S source length, T target length, H_dec decoder hidden.
"""

from __future__ import annotations

import torch
from torch import nn


class DecoderAttention(nn.Module):
    """Luong or Bahdanau attention over the memory; module names map to canonical names.

    ``W_a`` -> ``decoder.attention.W_a`` (luong); ``W_1``, ``W_2``, ``v_a`` ->
    ``decoder.attention.W_1``, ``W_2``, ``v_a`` (bahdanau); ``W_c`` ->
    ``decoder.attention.W_c``.

    Args:
        kind: "luong" or "bahdanau".
        hidden: H_dec.
    """

    def __init__(self, kind: str, hidden: int):
        super().__init__()
        self.kind = kind
        if kind == "luong":
            self.W_a = nn.Linear(hidden, hidden, bias=False)
        else:
            self.W_1 = nn.Linear(hidden, hidden, bias=False)
            self.W_2 = nn.Linear(hidden, hidden, bias=False)
            self.v_a = nn.Linear(hidden, 1, bias=False)
        self.W_c = nn.Linear(2 * hidden, hidden, bias=False)

    def forward(
        self, h_t: torch.Tensor, h_s: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(h~ (B, T, H_dec), a (B, T, S)) for h_t (B, T, H_dec), h_s (B, S, H_dec), mask (B, S)."""
        if self.kind == "luong":
            scores = h_t @ self.W_a(h_s).transpose(1, 2)                    # (B, T, S)
        else:
            query = self.W_1(h_t).unsqueeze(2)                              # (B, T, 1, H_dec)
            key = self.W_2(h_s).unsqueeze(1)                                # (B, 1, S, H_dec)
            scores = self.v_a(torch.tanh(query + key)).squeeze(-1)          # (B, T, S)
        # An all-PAD source row has nothing to attend to: weights 0, context 0.
        empty = ~mask.any(dim=1)                                            # (B,)
        hidden = ~(mask | empty.unsqueeze(1))                 # (B, S): the PAD of non-empty rows
        scores = scores.masked_fill(hidden.unsqueeze(1), float("-inf"))    # (B, T, S)
        a = torch.softmax(scores, dim=-1).masked_fill(empty.view(-1, 1, 1), 0.0)
        context = a @ h_s                                                   # (B, T, H_dec)
        return torch.tanh(self.W_c(torch.cat([context, h_t], dim=-1))), a  # (B, T, H_dec)
