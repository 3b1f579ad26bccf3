"""The model's shape and cell, written once for both backends.

A ``Seq2SeqConfig`` says how big every layer is; nothing in it is framework
specific.  Both ``keras_impl.build_model`` and ``torch_impl.build_model`` take
one, checkpoints store one (``to_dict``), and ``shared.layout`` derives the
canonical weight names and shapes from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# The recurrent cells, each with the parts of its state in our order (h first).
STATE_NAMES = {"lstm": ("h", "c"), "gru": ("h",)}
CELLS = tuple(STATE_NAMES)
# How the decoder looks back at the encoder's outputs (shared.layout.attention has the equations).
ATTENTIONS = ("none", "luong", "bahdanau")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Sizes and cell of the encoder-decoder.

    Args:
        src_vocab_size: V_src, number of source token ids (PAD, BOS, EOS, UNK included).
        tgt_vocab_size: V_tgt, number of target token ids (PAD, BOS, EOS, UNK included).
        embedding_dim: E, width of both embedding tables.
        hidden_size: H, the encoder's hidden width per direction.
        num_layers: L, stacked recurrent layers in the encoder and in the decoder.
        bidirectional: the encoder reads the source both ways (D = 2); the decoder
            is always one-directional and then has hidden width H_dec = 2H, so
            that the concatenated [forward, backward] hand-off fits it.
        dropout: probability of dropping an activation between stacked recurrent layers
            (torch ``nn.LSTM(dropout=...)`` semantics), only while training.
        cell: "lstm" (state (h, c), four gates i, f, g, o) or "gru" (state (h,), three
            gates r, z, n).  Checkpoints written before this field existed are LSTMs.
        attention: "none" (the decoder sees the question only through the hand-off),
            "luong" (multiplicative, "general": score = h_t^T W_a h_s) or "bahdanau"
            (additive: score = v_a^T tanh(W_1 h_t + W_2 h_s)); with either, the decoder
            also reads every encoder output at every step (``shared.layout.attention``).
            Checkpoints written before this field existed have no attention.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    embedding_dim: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    cell: str = "lstm"
    attention: str = "none"

    def __post_init__(self) -> None:
        # PAD, BOS, EOS and UNK take ids 0..3, so a vocabulary needs at least 4.
        for name, minimum in (
            ("src_vocab_size", 4),
            ("tgt_vocab_size", 4),
            ("embedding_dim", 1),
            ("hidden_size", 1),
            ("num_layers", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"Seq2SeqConfig.{name} must be an int; got {type(value).__name__} {value!r}"
                )
            if value < minimum:
                raise ValueError(f"Seq2SeqConfig.{name} must be >= {minimum}; got {value}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(
                f"Seq2SeqConfig.bidirectional must be True or False; got {self.bidirectional!r}"
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise ValueError(f"Seq2SeqConfig.dropout must be a float; got {self.dropout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Seq2SeqConfig.dropout must be in [0, 1); got {self.dropout}")
        if self.cell not in CELLS:
            raise ValueError(
                f"Seq2SeqConfig.cell must be one of {', '.join(map(repr, CELLS))}; "
                f"got {self.cell!r}"
            )
        if self.attention not in ATTENTIONS:
            raise ValueError(
                f"Seq2SeqConfig.attention must be one of {', '.join(map(repr, ATTENTIONS))}; "
                f"got {self.attention!r}"
            )

    @property
    def num_directions(self) -> int:
        """D: 2 for a bidirectional encoder, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def has_attention(self) -> bool:
        """True when the decoder also reads the encoder's outputs (Luong or Bahdanau)."""
        return self.attention != "none"

    @property
    def state_names(self) -> tuple[str, ...]:
        """The parts of one layer's state, in our order: ("h", "c") for an LSTM, ("h",) for a GRU.

        An LSTM carries a hidden state h and a cell state c, and the hand-off needs
        both; a GRU's hidden state h is its whole memory.
        """
        return STATE_NAMES[self.cell]

    @property
    def decoder_hidden_size(self) -> int:
        """H_dec = D * H: the decoder's width, equal to the width of the hand-off."""
        return self.num_directions * self.hidden_size

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Seq2SeqConfig:
        """The inverse of ``to_dict``; unknown or missing fields are a ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"a Seq2SeqConfig needs a dict; got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown Seq2SeqConfig field(s): {', '.join(unknown)}")
        required = {
            f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"missing Seq2SeqConfig field(s): {', '.join(missing)}")
        return cls(**data)
