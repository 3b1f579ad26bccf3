"""The encoder-decoder in PyTorch: the mirror of ``keras_impl/model.py``.

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
   h~ = tanh(W_c [context; h_t]) feed that layer instead (``torch_impl.attention``).

The cells (``shared.layout.gates`` has the canonical equations and every layout):

    LSTM, gates in PyTorch's order i, f, g, o:
        i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g                        h' = o * tanh(c')
    GRU, gates in PyTorch's order r, z, n:
        r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

PyTorch stores each layer's gates stacked: ``weight_ih_l{k}`` (G*H, in),
``weight_hh_l{k}`` (G*H, H) with G = 4 (LSTM) or 3 (GRU), and two biases
``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,); the backward direction adds the
suffix ``_reverse``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from shared import PAD, Seq2SeqConfig
from torch_impl.attention import DecoderAttention

# One PyTorch module per cell kind; the rest of the model reads the same for both.
RNN_LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU}


class Seq2Seq(nn.Module):
    """Encoder-decoder LSTM or GRU; layer names map one-to-one to canonical names.

    ``encoder_embedding`` -> ``encoder.embedding``,
    ``encoder_rnn`` layer k (and ``_reverse``)
        -> ``encoder.layers.{k}.{forward|backward}``,
    ``decoder_embedding`` -> ``decoder.embedding``,
    ``decoder_rnn`` layer k -> ``decoder.layers.{k}.forward``,
    ``decoder_attention`` -> ``decoder.attention`` (with attention only),
    ``decoder_output`` -> ``decoder.output``.

    Args:
        config: the sizes and the cell (``shared.Seq2SeqConfig``).
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        H, E, L = config.hidden_size, config.embedding_dim, config.num_layers
        H_dec = config.decoder_hidden_size
        dropout = config.dropout if L > 1 else 0.0  # between stacked layers only
        # padding_idx zeroes the PAD row of a new model and gives it no gradient (Keras's
        # mask_zero does neither); packing, not padding_idx, keeps PAD out of the states.
        self.encoder_embedding = nn.Embedding(config.src_vocab_size, E, padding_idx=PAD)
        # PyTorch stacks L layers (and both directions) in one module; Keras keeps a list.
        self.encoder_rnn = RNN_LAYERS[config.cell](
            E, H, num_layers=L, bidirectional=config.bidirectional, dropout=dropout,
            batch_first=True,
        )
        self.decoder_embedding = nn.Embedding(config.tgt_vocab_size, E, padding_idx=PAD)
        self.decoder_rnn = RNN_LAYERS[config.cell](
            E, H_dec, num_layers=L, dropout=dropout, batch_first=True,
        )
        self.decoder_attention = None
        if config.has_attention:
            self.decoder_attention = DecoderAttention(config.attention, H_dec)
        self.decoder_output = nn.Linear(H_dec, config.tgt_vocab_size)
        if config.cell == "lstm":
            # Two biases per gate, but only their sum b_ih + b_hh acts.  Keras has one
            # bias; if both of ours trained, every gradient step would move the sum
            # twice as far as Keras moves its bias.  Training bias_ih alone takes the
            # same steps as Keras (bias_hh still holds what import_weights gives it).
            # A GRU's b_hn sits inside r * (...): both biases act apart, and train.
            for rnn in (self.encoder_rnn, self.decoder_rnn):
                for name, param in rnn.named_parameters():
                    if name.startswith("bias_hh"):
                        param.requires_grad_(False)

    def encode(self, src: torch.Tensor, return_memory: bool = False,
               initial_state: tuple[torch.Tensor, ...] | None = None):
        """Read the question; return the hand-off, (h, c) or (h,), each (L, B, H_dec).

        Args:
            src: int64 (B, S), post-padded with PAD.  A row of only PAD gives zeros.
            return_memory: also return what attention reads, (outputs, mask): the
                top layer's outputs (B, S, H_dec), zeros at PAD, and src != PAD (B, S).
            initial_state: None (zeros), or (h, c) / (h,), each (L, B, H): where each
                layer starts, to read a long source chunk by chunk (unidirectional
                only); a row of only PAD then hands off the state it was given.
        """
        cfg = self.config
        B = src.shape[0]
        lengths = (src != PAD).sum(dim=1)                                   # (B,)
        x = self.encoder_embedding(src)                                     # (B, S, E)
        # Keras masks; PyTorch packs: both end each row at its last real token.
        out, final = run_packed(self.encoder_rnn, x, lengths, initial_state)  # (B, S, D*H)
        empty = (lengths == 0).view(1, B, 1)                                # (1, B, 1)
        handoff = []
        for j, part in enumerate(final):
            # The module's states are layer-major then direction: (L*D, B, H) ->
            # (L, D, B, H); the hand-off per layer is concat([forward, backward]).
            part = part.view(cfg.num_layers, cfg.num_directions, B, cfg.hidden_size)
            part = torch.cat(part.unbind(dim=1), dim=-1)                    # (L, B, H_dec)
            given = torch.zeros_like(part) if initial_state is None else initial_state[j]
            # Packing refuses length 0, so an empty row ran one PAD step: it keeps its state.
            handoff.append(torch.where(empty, given, part))                 # (L, B, H_dec)
        if not return_memory:
            return tuple(handoff)
        # Packed outputs are zeros at PAD, except an empty row's one PAD step.
        mask = src != PAD                                                   # (B, S)
        return tuple(handoff), (out.masked_fill(~mask.unsqueeze(-1), 0.0), mask)

    def decode(self, tgt_in: torch.Tensor, state: tuple[torch.Tensor, ...], memory=None,
               return_attention: bool = False):
        """Run the decoder from ``state``; return (logits, state).

        Args:
            tgt_in: int64 (B, T), BOS + answer, post-padded with PAD.  T = 1 is one
                generation step.
            state: the initial state, (h, c) or (h,), each (L, B, H_dec): the
                hand-off, or the state returned by the previous step.
            memory: (outputs (B, S, H_dec), mask (B, S)) from ``encode``; read only
                with attention.
            return_attention: also return the attention weights (B, T, S).

        Returns:
            logits (B, T, V_tgt) and the decoder's final state, like ``state``,
            taken at each row's last real token (and the weights, if asked).
            Logits at PAD positions are unspecified: packed PyTorch gives the output
            bias there (without attention), Keras repeats the last real step's
            output.  Compare and train only on real positions.
        """
        B = tgt_in.shape[0]
        lengths = (tgt_in != PAD).sum(dim=1)                                # (B,)
        y = self.decoder_embedding(tgt_in)                                  # (B, T, E)
        out, final = run_packed(self.decoder_rnn, y, lengths, state)        # (B, T, H_dec)
        weights = None
        if self.decoder_attention is not None:  # h~ = tanh(W_c [context; h_t]) replaces h_t
            out, weights = self.decoder_attention(out, *memory)             # (B, T, H_dec)
        logits = self.decoder_output(out)                                   # (B, T, V_tgt)
        # An all-PAD row has taken no step: it keeps the state it was given.
        empty = (lengths == 0).view(1, B, 1)                                # (1, B, 1)
        final = tuple(torch.where(empty, given, new)                        # (L, B, H_dec)
                      for given, new in zip(state, final, strict=True))
        if return_attention:
            return logits, final, weights                                   # weights (B, T, S)
        return logits, final

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V_tgt) for a batch: decode(tgt_in, encode(src))."""
        state, memory = self.encode(src, return_memory=True)                # each (L, B, H_dec)
        logits, _ = self.decode(tgt_in, state, memory)                      # (B, T, V_tgt)
        return logits


def run_packed(rnn: nn.LSTM | nn.GRU, x: torch.Tensor, lengths: torch.Tensor, state=None):
    """Run ``rnn`` over x (B, T, in), each row only up to its length.

    Args:
        rnn: an ``nn.LSTM`` or ``nn.GRU`` with ``batch_first=True``.
        x: (B, T, in) inputs.
        lengths: (B,) real steps per row.
        state: None (zeros), or our state tuple, (h, c) or (h,), each (L*D, B, H).

    Returns:
        (out (B, T, D*H), state): padded outputs are zeros; the state is our tuple,
        (h_n, c_n) or (h_n,), each (L*D, B, H).  nn.LSTM takes and returns (h, c)
        as a pair and nn.GRU h alone: the tuple is made and unmade here only.

    Packing refuses length 0, so an empty row runs one PAD step: callers reset its
    state.  With no padding at all nothing is packed: unpacked, the module runs its
    fused CPU kernel (oneDNN), while packed input falls back to a loop of small
    per-step products (docs/performance.md measured the difference).
    """
    if state is not None:
        state = tuple(state) if len(state) == 2 else state[0]               # nn.GRU: h alone
    T = x.shape[1]
    if bool((lengths == T).all()):
        out, final = rnn(x, state)
    else:
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, final = rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*H)
    return out, tuple(final) if isinstance(final, tuple) else (final,)
