"""The one table every parity report prints: a line per engine (or pair), a column per rung.

``compare``, the demo and ``benchmarks/parity_table.py`` all print ladder rows
(``shared.ladder.rungs.Row``) through ``format_ladder``: each cell is the worst
of its rung (the largest difference over every tensor, part and layer; for greedy
and beam, the rows that differ of the rows compared), the last line the
tolerances, and under the table every row over its tolerance in full, with the
tensor, the place and both values.  For torch_impl on a grid model of the tests
(an LSTM, one bidirectional layer, no attention: no memory nor attention column):

    engine     hand-off   logits  final state  greedy   beam  result
    ---------  --------  -------  -----------  ------  -----  ------
    torch       5.2e-08  2.5e-08        5e-08     0/5    0/5  ok
    tolerance     1e-05    1e-04        1e-05   exact  exact
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from shared.core.compare import format_columns, sci
from shared.ladder.rungs import RUNGS, TOKEN_RUNGS, TOLERANCES, Row


def worst(rows: Iterable[Row]) -> float:
    """The worst of some rows of one rung: the largest difference (NaN if any is NaN), or for
    tokens the rows that differ, summed."""
    rows = list(rows)
    if rows and rows[0].rung in TOKEN_RUNGS:
        return sum(int(row.max_abs_diff) for row in rows)
    diffs = [row.max_abs_diff for row in rows]
    return math.nan if any(math.isnan(d) for d in diffs) else max(diffs, default=0.0)


def worst_by_rung(rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """{engine: {rung: worst}} over ``rows``, engines and rungs in the order they came."""
    return {engine: {rung: worst(row for row in rows if row.engine == engine and row.rung == rung)
                     for rung in _rungs(row for row in rows if row.engine == engine)}
            for engine in dict.fromkeys(row.engine for row in rows)}


def format_ladder(rows: Sequence[Row]) -> str:
    """The rows as one aligned table, then each failing row in full (see the module docstring)."""
    rungs = _rungs(rows)
    body = []
    for engine in dict.fromkeys(row.engine for row in rows):
        mine = [row for row in rows if row.engine == engine]
        cells = [_cell([row for row in mine if row.rung == rung]) for rung in rungs]
        body.append((engine, *cells, "ok" if all(row.ok for row in mine) else "FAIL"))
    body.append(("tolerance", *("exact" if rung in TOKEN_RUNGS else sci(TOLERANCES[rung])
                                for rung in rungs), ""))
    table = format_columns(("engine", *rungs, "result"), body, "<" + ">" * len(rungs) + "<")
    return "\n".join([table, *(f"FAIL {row}" for row in rows if not row.ok)])


def _rungs(rows: Iterable[Row]) -> list[str]:
    present = {row.rung for row in rows}
    return [rung for rung in RUNGS if rung in present]


def _cell(rows: list[Row]) -> str:
    if not rows:
        return "-"  # a rung this engine's model has not (attention without attention)
    if rows[0].rung in TOKEN_RUNGS:
        return f"{worst(rows)}/{sum(row.rows for row in rows)}"
    return sci(worst(rows))
