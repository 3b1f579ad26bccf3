"""The two on-device programs over the PyTorch model: the encoder, and one decoder step.

The mirror of ``keras_impl/programs.py``.  What ExecuTorch runs, before
``torch_impl.on_device`` lowers it: two modules of fixed-shape tensors over the
model's own parameters, taking and giving the tensors that ``shared.ondevice.contract``
names, in its order:

    EncoderProgram   src int32 (B, S) [, h, c (L, B, H_dec)]   -> h, c [, memory, memory_mask]
    DecoderProgram   tokens int32 (B,), h, c [, memory, mask]  -> logits, h, c [, attention]

Why not the model's own ``encode``: it packs (``pack_padded_sequence``), and packing
depends on the data, which ``torch.export`` cannot trace; run unpacked over the
padding, an LSTM would carry PAD steps into the hand-off (the mutation test shows
how far).  So each layer and direction runs step by step, with the gate equations
on the ``nn.LSTM``/``nn.GRU``'s own weights (``torch_impl.import_weights`` fills them
as usual), and keeps the state where the token is PAD (``torch.where``): the
forward direction stops at each row's last real token, the backward one starts
there (its state stays zero through the trailing PAD), as packing does.
``torch.export`` unrolls the loop: one set of ops per step, per layer, per direction.

    LSTM, gates i, f, g, o:  i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh)
        c' = σ(f) * c + σ(i) * tanh(g)            h' = σ(o) * tanh(c')
    GRU, gates r, z, n:      x_r, x_z, x_n = split(W_ih x + b_ih)
                             h_r, h_z, h_n = split(W_hh h + b_hh)
        r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r * h_n)   h' = (1 - z) * n + z * h

The products are ``F.linear``: XNNPACK's partitioner takes a linear (a fully
connected op), and would leave ``x @ W.T + b`` to the portable kernels.  Ids come
in as int32 and are widened for the embedding.

Shapes: B batch, S source length, E embedding, H hidden (per direction), H_dec = D*H,
L layers, G gates (4 LSTM, 3 GRU), V_tgt target vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared import PAD
from shared.ondevice.contract import streams
from torch_impl.model import Seq2Seq


def lstm_step(x_proj, h, c, W_hh, b_hh):
    """One LSTM step from x_proj = W_ih x + b_ih (B, 4H): (h', c'), each (B, H)."""
    i, f, g, o = (x_proj + F.linear(h, W_hh, b_hh)).chunk(4, dim=-1)        # each (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(x_proj, h, W_hh, b_hh):
    """One GRU step from x_proj = W_ih x + b_ih (B, 3H): (h',), (B, H); reset after W_hn h."""
    x_r, x_z, x_n = x_proj.chunk(3, dim=-1)                                 # each (B, H)
    h_r, h_z, h_n = F.linear(h, W_hh, b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h,)


def _step(cell: str, x_proj, state, W_hh, b_hh, keep):
    """One step of ``cell``; a row whose ``keep`` (B, 1) is False keeps its state."""
    new = lstm_step(x_proj, *state, W_hh, b_hh) if cell == "lstm" else \
        gru_step(x_proj, *state, W_hh, b_hh)
    return tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))


def _weights(rnn: nn.LSTM | nn.GRU, k: int, reverse: bool):
    """Layer k's (W_ih, W_hh, b_ih, b_hh) of one direction, as the module holds them."""
    suffix = f"l{k}" + ("_reverse" if reverse else "")
    return [getattr(rnn, f"{name}_{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


class EncoderProgram(nn.Module):
    """src (B, S) [, the state to start from] -> the hand-off [and the memory], in order.

    Args:
        model: a ``torch_impl`` model holding the weights to export.
    """

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.config = model.config
        self.embedding, self.rnn = model.encoder_embedding, model.encoder_rnn

    def forward(self, src: torch.Tensor, *state: torch.Tensor):
        cfg = self.config
        B, S = src.shape
        real = src != PAD                                                   # (B, S)
        x = self.embedding(src.long())                                      # (B, S, E)
        zeros = x.new_zeros(B, cfg.hidden_size)                             # (B, H)
        per_layer = []
        for k in range(cfg.num_layers):
            outputs, finals = [], []
            for reverse in (False, True)[: cfg.num_directions]:
                W_ih, W_hh, b_ih, b_hh = _weights(self.rnn, k, reverse)
                x_proj = F.linear(x, W_ih, b_ih)                            # (B, S, G*H), once
                carried = tuple(part[k] for part in state) if streams(cfg) else \
                    (zeros,) * len(cfg.state_names)                         # each (B, H)
                steps = [None] * S
                for t in (reversed(range(S)) if reverse else range(S)):
                    carried = _step(cfg.cell, x_proj[:, t], carried, W_hh, b_hh, real[:, t, None])
                    steps[t] = carried[0]                                   # h after step t
                outputs.append(torch.stack(steps, dim=1))                   # (B, S, H)
                finals.append(carried)
            # PAD steps kept h; as an output they are zeros, as packing gives.
            x = torch.where(real[..., None], torch.cat(outputs, dim=-1), 0.0)  # (B, S, D*H)
            per_layer.append([torch.cat(parts, dim=-1) for parts in zip(*finals, strict=True)])
        handoff = [torch.stack(parts) for parts in zip(*per_layer, strict=True)]  # (L, B, H_dec)
        if cfg.has_attention:
            return (*handoff, x, real)                                      # memory, memory_mask
        return tuple(handoff)


class DecoderProgram(nn.Module):
    """One generation step: tokens (B,), the state [, the memory] -> logits, state [, weights].

    Args:
        model: a ``torch_impl`` model holding the weights to export.
    """

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.config = model.config
        self.embedding, self.rnn = model.decoder_embedding, model.decoder_rnn
        self.attention, self.output = model.decoder_attention, model.decoder_output

    def forward(self, tokens: torch.Tensor, *rest: torch.Tensor):
        cfg = self.config
        parts = len(cfg.state_names)
        state, memory = rest[:parts], rest[parts:]                          # each (L, B, H_dec)
        keep = (tokens != PAD)[:, None]                                     # (B, 1): PAD keeps
        y = self.embedding(tokens.long())                                   # (B, E)
        finals = []
        for k in range(cfg.num_layers):
            W_ih, W_hh, b_ih, b_hh = _weights(self.rnn, k, False)
            new = _step(cfg.cell, F.linear(y, W_ih, b_ih), tuple(part[k] for part in state),
                        W_hh, b_hh, keep)
            finals.append(new)
            y = new[0]                                                      # (B, H_dec)
        final = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        if cfg.has_attention:  # h~ = tanh(W_c [context; h_t]) replaces h_t
            y, weights = self.attention(y[:, None], *memory)                # (B, 1, H_dec)
            return self.output(y[:, 0]), *final, weights[:, 0]              # (B, V_tgt), (B, S)
        return self.output(y), *final                                       # (B, V_tgt)


PROGRAMS = {"encoder": EncoderProgram, "decoder": DecoderProgram}
