"""The encoder-decoder LSTM in PyTorch: the mirror of ``keras_impl/model.py``.

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

Each LSTM step, gates in the order i, f, g, o (PyTorch's own order):

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g
    h' = o * tanh(c')

PyTorch stores them stacked: ``weight_ih_l{k}`` = (W_ii|W_if|W_ig|W_io), shape
(4H, in); ``weight_hh_l{k}`` (4H, H); two biases ``bias_ih_l{k}`` and
``bias_hh_l{k}`` (4H,); the backward direction adds the suffix ``_reverse``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from shared import PAD, Seq2SeqConfig


class Seq2Seq(nn.Module):
    """Encoder-decoder LSTM; layer names map one-to-one to canonical names.

    ``encoder_embedding`` -> ``encoder.embedding``,
    ``encoder_lstm`` layer k (and ``_reverse``)
        -> ``encoder.layers.{k}.{forward|backward}``,
    ``decoder_embedding`` -> ``decoder.embedding``,
    ``decoder_lstm`` layer k -> ``decoder.layers.{k}.forward``,
    ``decoder_output`` -> ``decoder.output``.

    Args:
        config: the sizes (``shared.Seq2SeqConfig``).
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        H, E, L = config.hidden_size, config.embedding_dim, config.num_layers
        H_dec = config.decoder_hidden_size
        # padding_idx only freezes the PAD row; packing is what keeps PAD out of the states.
        self.encoder_embedding = nn.Embedding(config.src_vocab_size, E, padding_idx=PAD)
        # PyTorch stacks L layers (and both directions) in one nn.LSTM; Keras keeps a list.
        self.encoder_lstm = nn.LSTM(
            E, H, num_layers=L, bidirectional=config.bidirectional,
            dropout=config.dropout if L > 1 else 0.0, batch_first=True,
        )
        self.decoder_embedding = nn.Embedding(config.tgt_vocab_size, E, padding_idx=PAD)
        self.decoder_lstm = nn.LSTM(
            E, H_dec, num_layers=L, dropout=config.dropout if L > 1 else 0.0, batch_first=True,
        )
        self.decoder_output = nn.Linear(H_dec, config.tgt_vocab_size)
        # Two biases per gate, but only their sum b_ih + b_hh acts.  Keras has one
        # bias; if both of ours trained, every gradient step would move the sum
        # twice as far as Keras moves its bias.  Training bias_ih alone takes the
        # same steps as Keras (bias_hh still holds what import_weights gives it).
        for lstm in (self.encoder_lstm, self.decoder_lstm):
            for name, param in lstm.named_parameters():
                if name.startswith("bias_hh"):
                    param.requires_grad_(False)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the question; return the hand-off (h, c), each (L, B, H_dec).

        Args:
            src: int64 (B, S), post-padded with PAD.  A row of only PAD gives zeros.
        """
        cfg = self.config
        B = src.shape[0]
        lengths = (src != PAD).sum(dim=1)                                   # (B,)
        x = self.encoder_embedding(src)                                     # (B, S, E)
        # Keras masks; PyTorch packs: both end each row at its last real token.
        _, (h_n, c_n) = run_packed(self.encoder_lstm, x, lengths)           # each (L*D, B, H)
        # nn.LSTM's states are layer-major then direction: (L*D, B, H) -> (L, D, B, H);
        # the hand-off per layer is concat([forward, backward]) on the feature axis.
        h = h_n.view(cfg.num_layers, cfg.num_directions, B, cfg.hidden_size)
        c = c_n.view(cfg.num_layers, cfg.num_directions, B, cfg.hidden_size)
        h = torch.cat(h.unbind(dim=1), dim=-1)                              # (L, B, H_dec)
        c = torch.cat(c.unbind(dim=1), dim=-1)                              # (L, B, H_dec)
        empty = (lengths == 0).view(1, B, 1)                                # (1, B, 1)
        h = h.masked_fill(empty, 0.0)                                       # (L, B, H_dec)
        c = c.masked_fill(empty, 0.0)                                       # (L, B, H_dec)
        return h, c

    def decode(
        self, tgt_in: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the decoder from state (h, c); return (logits, h, c).

        Args:
            tgt_in: int64 (B, T), BOS + answer, post-padded with PAD.  T = 1 is one
                generation step.
            h, c: the initial state, each (L, B, H_dec): the hand-off, or the state
                returned by the previous step.

        Returns:
            logits (B, T, V_tgt) and the decoder's final (h, c), each (L, B, H_dec),
            taken at each row's last real token.  Logits at PAD positions are
            unspecified: packed PyTorch gives the output bias there, Keras repeats
            the last real step's output.  Compare and train only on real positions.
        """
        B = tgt_in.shape[0]
        lengths = (tgt_in != PAD).sum(dim=1)                                # (B,)
        y = self.decoder_embedding(tgt_in)                                  # (B, T, E)
        out, (h_n, c_n) = run_packed(self.decoder_lstm, y, lengths, (h, c))  # (B, T, H_dec)
        logits = self.decoder_output(out)                                   # (B, T, V_tgt)
        # An all-PAD row has taken no step: it keeps the state it was given.
        empty = (lengths == 0).view(1, B, 1)                                # (1, B, 1)
        h_n = torch.where(empty, h, h_n)                                    # (L, B, H_dec)
        c_n = torch.where(empty, c, c_n)                                    # (L, B, H_dec)
        return logits, h_n, c_n

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V_tgt) for a batch: decode(tgt_in, encode(src))."""
        h, c = self.encode(src)                                             # each (L, B, H_dec)
        logits, _, _ = self.decode(tgt_in, h, c)                            # (B, T, V_tgt)
        return logits


def run_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, state=None):
    """Run ``lstm`` over x (B, T, in), each row only up to its length.

    Returns (out (B, T, D*H), (h_n, c_n) each (L*D, B, H)); padded outputs are zeros.
    Packing refuses length 0, so an empty row runs one PAD step: callers reset its
    state.  With no padding at all nothing is packed: unpacked, nn.LSTM runs its
    fused CPU kernel (oneDNN), while packed input falls back to a loop of small
    per-step products (docs/performance.md measured the difference).
    """
    T = x.shape[1]
    if bool((lengths == T).all()):
        return lstm(x, state)
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                  enforce_sorted=False)
    out, (h_n, c_n) = lstm(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*H)
    return out, (h_n, c_n)
