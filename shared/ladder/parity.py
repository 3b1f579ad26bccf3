"""Several engines on one set of weights: each against the reference, then every pair.

What the ``compare`` command and the demo report.  Each engine's side is
computed by ``shared.ladder.rungs.engine_outputs`` (here, or in another process
for Keras on another backend, whose arrays cross back), and ``parity_report``
compares them with the rungs of ``shared.ladder.rungs``: first each engine against
the float64 reference, then each pair of engines, from the same inputs (the
reference's hand-off and memory, teacher-forced on its greedy answers).

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden,
V_tgt target vocabulary.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from shared.core.config import Seq2SeqConfig
from shared.decoding.search import search_bytes
from shared.ladder.rungs import BEAM_SIZE, Outputs, Reference, Row, compare_outputs
from shared.ladder.table import format_ladder, worst


@dataclass(frozen=True)
class ParityReport:
    """What ``parity_report`` found.

    Attributes:
        reference: the reference's side, inputs included.
        outputs: each engine's side, by engine name, in the order given.
        rows: every engine against the reference, then every pair ("a vs b").
    """

    reference: Reference
    outputs: dict[str, Outputs]
    rows: list[Row]

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def worst(self, engine: str, rung: str) -> float:
        """The worst of one engine's (or pair's) rung: a difference, or rows that differ."""
        return worst(row for row in self.rows if row.engine == engine and row.rung == rung)

    def table(self) -> str:
        return format_ladder(self.rows)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "engines": list(self.outputs),
                "questions": len(self.reference.inputs.src),
                "rows": [row.to_dict() for row in self.rows]}


def parity_report(outputs: Mapping[str, Outputs], reference: Reference) -> ParityReport:
    """Compare each engine's ``outputs`` with the reference's, then each pair with each other."""
    tgt_in = reference.inputs.tgt_in
    rows = [row for engine, got in outputs.items()
            for row in compare_outputs(engine, got, reference.outputs, tgt_in)]
    for (first, got), (second, other) in itertools.combinations(outputs.items(), 2):
        rows += compare_outputs(f"{first} vs {second}", got, other, tgt_in)
    return ParityReport(reference, dict(outputs), rows)


def parity_bytes(config: Seq2SeqConfig, batch_size: int, source_len: int, max_len: int,
                 engines: int = 3, beam_size: int = BEAM_SIZE) -> int:
    """An estimate of the bytes a parity report over ``engines`` engines holds at its peak.

    It grows with B and is dominated by the logits: each engine's float32
    (B, T + 1, V) and the reference's float64, all kept until the report is done,
    and the float64 copies and differences one comparison makes (32 bytes per
    logit).  Next come each layer's outputs inside an engine, float32
    (B, S + T + 1, H_dec), the attention weights (B, T + 1, S) counted like the
    logits, every side's hand-off and final state, and the searches' tokens.
    """
    B, T1, H = batch_size, max_len + 1, config.decoder_hidden_size
    per_value = engines * 4 + 8 + 32              # kept by each side, then one comparison
    logits = per_value * B * T1 * config.tgt_vocab_size
    layer_outputs = 2 * config.num_layers * B * (source_len + T1) * H * 4
    attention = per_value * B * T1 * source_len if config.has_attention else 0
    states = 2 * (engines + 1) * len(config.state_names) * config.num_layers * B * H * 8
    tokens = B * source_len * 8 + (engines + 1) * search_bytes(B, max_len, beam_size)
    return logits + layer_outputs + attention + states + tokens
