"""The parity table: run one checkpoint in both backends and compare, layer by layer.

Used by the ``compare`` command and by the demo.  Both models hold the same
canonical weights; every quantity the seed question is about -- the hand-off of
each layer (h and c for an LSTM, h for a GRU), the decoder's logits, with
attention the attention weights, the generated tokens -- is computed by each and
compared with the tolerances of ``shared.core.compare``.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.core.compare import (
    LOGITS_ATOL,
    STATE_ATOL,
    Comparison,
    agreement,
    compare,
    format_table,
)
from shared.core.config import Seq2SeqConfig
from shared.core.tokens import BOS, EOS, PAD
from shared.decoding.search import search_bytes


@dataclass(frozen=True)
class ParityReport:
    """What ``parity_report`` found.

    Attributes:
        comparisons: one Comparison per hand-off part (h, c) per layer, then the logits
            (and, with attention, the attention weights).
        greedy_agreement: fraction of rows whose greedy tokens are identical.
        greedy: each backend's greedy tokens, int64 (B, max_len).
    """

    comparisons: list[Comparison]
    greedy_agreement: float
    greedy: dict[str, np.ndarray]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons) and self.greedy_agreement == 1.0

    @property
    def max_abs_diff(self) -> dict[str, float]:
        """The largest difference over the hand-off (every part, all layers) and the logits."""
        handoff = [c.max_abs_diff for c in self.comparisons if c.name.startswith("hand-off")]
        logits = [c.max_abs_diff for c in self.comparisons if c.name == "logits"]
        return {"handoff": float(max(handoff)), "logits": float(max(logits))}

    def table(self) -> str:
        lines = [format_table(self.comparisons)]
        lines.append(f"greedy agreement: {self.greedy_agreement:.1%} of rows identical")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "max_abs_diff": self.max_abs_diff,
            "greedy_agreement": self.greedy_agreement,
            "comparisons": [
                {"name": c.name, "max_abs_diff": c.max_abs_diff, "atol": c.atol, "ok": c.ok}
                for c in self.comparisons
            ],
        }


def teacher_inputs(tokens: np.ndarray) -> np.ndarray:
    """Decoder input BOS + tokens (up to EOS) from generated tokens (B, T) -> (B, T + 1)."""
    B, T = tokens.shape
    tgt_in = np.full((B, T + 1), PAD, dtype=np.int64)                       # (B, T + 1)
    tgt_in[:, 0] = BOS
    for row in range(B):
        real = tokens[row][(tokens[row] != PAD) & (tokens[row] != EOS)]
        tgt_in[row, 1 : 1 + len(real)] = real
    return tgt_in


def parity_bytes(config: Seq2SeqConfig, batch_size: int, source_len: int, max_len: int) -> int:
    """An estimate of the bytes ``parity_report`` holds at once for B questions of S tokens.

    It grows with B and is dominated by the logits: each backend's float32
    (B, T + 1, V) and the float64 copies ``compare`` makes of both (40 bytes per
    logit in all).  Next come each layer's outputs in both frameworks, float32
    (B, S + T + 1, H_dec), the hand-offs, and the int64 token arrays.
    """
    B, T1, H = batch_size, max_len + 1, config.decoder_hidden_size
    logits = B * T1 * config.tgt_vocab_size * (2 * 4 + 4 * 8)
    layer_outputs = 2 * config.num_layers * B * (source_len + T1) * H * 4
    handoffs = 2 * len(config.state_names) * config.num_layers * B * H * 4
    tokens = B * source_len * 8 + 2 * search_bytes(B, max_len) + B * T1 * 8
    return logits + layer_outputs + handoffs + tokens


def parity_report(first, second, src: np.ndarray, max_len: int = 20) -> ParityReport:
    """Compare two (backend module, model) pairs that hold the same weights.

    Args:
        first, second: ``(module, model)``, e.g. ``(keras_impl, keras_model)``.
        src: int64 (B, S) questions, post-padded.
        max_len: generation length for the greedy comparison.
    """
    (mod_a, model_a), (mod_b, model_b) = first, second
    state_a, memory = mod_a.encode(model_a, src, return_memory=True)        # each (L, B, H_dec)
    state_b = mod_b.encode(model_b, src)                                    # each (L, B, H_dec)
    names = model_a.config.state_names                                      # ("h", "c") or ("h",)
    comparisons = []
    for k in range(state_a[0].shape[0]):
        for name, part_a, part_b in zip(names, state_a, state_b, strict=True):
            comparisons.append(compare(f"hand-off {name} layer {k}", part_a[k], part_b[k],
                                       STATE_ATOL))
    greedy = {
        mod_a.NAME: mod_a.greedy_decode(model_a, src, max_len),
        mod_b.NAME: mod_b.greedy_decode(model_b, src, max_len),
    }
    # Teacher-force both decoders on the first backend's answers, from the same hand-off
    # (and the same memory, which only an attending decoder reads).
    tgt_in = teacher_inputs(greedy[mod_a.NAME])                             # (B, T + 1)
    logits_a, _ = mod_a.decode(model_a, tgt_in, state_a, memory)            # (B, T + 1, V)
    logits_b, _ = mod_b.decode(model_b, tgt_in, state_a, memory)            # (B, T + 1, V)
    comparisons.append(compare("logits", logits_a, logits_b, LOGITS_ATOL, mask=tgt_in != PAD))
    if model_a.config.has_attention:
        weights_a = mod_a.attention_weights(model_a, src, tgt_in)           # (B, T + 1, S)
        weights_b = mod_b.attention_weights(model_b, src, tgt_in)           # (B, T + 1, S)
        comparisons.append(compare("attention weights", weights_a, weights_b, STATE_ATOL,
                                   mask=tgt_in != PAD))
    return ParityReport(comparisons, agreement(*greedy.values()), greedy)
