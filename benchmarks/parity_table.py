"""The worst difference per rung and per engine over the parity grid, as one table.

    python benchmarks/parity_table.py                 # Keras on KERAS_BACKEND, PyTorch, ONNX
    python benchmarks/parity_table.py --keras-backends tensorflow,jax,torch

The tests assert each rung within its tolerance; this prints how far inside it
each engine is, for the README and the issues' closing notes.  The grid and the
batch are the tests' own (tests/support.py: both cells, layers 1-3, uni- and
bidirectional, E == H and not, an empty and a length-1 source row), and every
engine climbs the tests' ladder (``shared.ladder``): hand-off, memory, logits,
final state, attention weights, greedy and beam tokens, each against the NumPy
reference in float64 (see ``shared.ladder.rungs`` for what each rung compares).

Every figure is given per family: the six LSTM and six GRU models without
attention, and the two models of each attention kind (one LSTM, one GRU); a cell
is the worst over the family's models, and for greedy and beam the rows that
differ of the rows compared.

With ``--keras-backends``, Keras runs on each backend in its own process
(``shared.app.elsewhere``: Keras fixes its backend at import); PyTorch and ONNX
Runtime run in this one.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser
from shared.ladder import Row, climb, engine_name, format_ladder, run_reference, worst_by_rung

MAX_LEN = 8


def family(config) -> str:
    """The row a grid model counts in: its cell without attention, its attention kind with."""
    return config.attention if config.has_attention else config.cell


def measure(engines: list[str]) -> list[dict]:
    """Every named engine (imported here) up the ladder on every grid model, as row dicts.

    Each row's engine reads "<engine>, <family>", e.g. "torch, gru".
    """
    from tests.support import GRID, grid_config, grid_weights, sample_batch

    references = []
    for params in GRID:
        config = grid_config(*params)
        weights = grid_weights(config, seed=7)
        src, tgt_in = sample_batch(seed=3)
        references.append((weights, run_reference(weights, config, src, tgt_in, MAX_LEN)))
    rows = []
    for module in (importlib.import_module(name) for name in engines):
        for weights, reference in references:
            model = module.build_model(reference.config, seed=0)
            module.import_weights(model, weights)
            label = f"{engine_name(module)}, {family(reference.config)}"
            rows += climb(module, model, reference, engine=label)
    return [row.to_dict() for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, keras_backends=True)
    args = parser.parse_args(argv)
    if args.keras_backends is None:
        found = measure(["keras_impl", "torch_impl", "onnx_impl"])
    else:
        from shared.app.elsewhere import run_elsewhere

        found = [row for backend in args.keras_backends.split(",")
                 for row in run_elsewhere("benchmarks.parity_table:measure",
                                          {"engines": ["keras_impl"]}, keras_backend=backend)]
        found += measure(["torch_impl", "onnx_impl"])
    rows = [Row(**row) for row in found]
    if args.json:
        print(json.dumps(worst_by_rung(rows)))
        return 0
    print(format_ladder(rows))
    print("hand-off, memory, logits, final state, attention: max |diff| against the float64 "
          "reference over the family's models; greedy, beam: rows that differ of the rows "
          "compared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
