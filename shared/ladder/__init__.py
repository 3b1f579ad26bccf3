"""The parity ladder: one engine's model climbed rung by rung against the reference.

``rungs`` (the ladder itself: ``run_reference``, ``climb``, ``engine_outputs``,
``compare_outputs``, named ``Row``s), ``parity`` (several engines against the
reference and each other: ``parity_report``, and its memory estimate), ``table``
(``format_ladder``, the one table every parity report prints).  The ``compare``
command, the demo, ``benchmarks/parity_table.py`` and the tests all climb it.

May import: shared.core, shared.text, shared.layout, shared.decoding, shared.reference;
NumPy and the standard library.  Engines are passed in, never imported.
"""

from shared.ladder.parity import ParityReport, parity_bytes, parity_report
from shared.ladder.rungs import (
    RUNGS,
    TOKEN_RUNGS,
    TOLERANCES,
    Inputs,
    Outputs,
    Reference,
    Row,
    climb,
    compare_outputs,
    engine_name,
    engine_outputs,
    run_reference,
    teacher_inputs,
)
from shared.ladder.table import format_ladder, worst, worst_by_rung

__all__ = [
    "RUNGS",
    "TOKEN_RUNGS",
    "TOLERANCES",
    "Inputs",
    "Outputs",
    "ParityReport",
    "Reference",
    "Row",
    "climb",
    "compare_outputs",
    "engine_name",
    "engine_outputs",
    "format_ladder",
    "parity_bytes",
    "parity_report",
    "run_reference",
    "teacher_inputs",
    "worst",
    "worst_by_rung",
]
