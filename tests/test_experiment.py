"""``experiment thought-vector``: the metric by hand, and a tiny run end to end.

The full experiment and ``--quick`` (their times are in docs/thought-vector.md) are
not part of the suite; a run with tiny sizes proves that every model trains, every
length is measured and the three files are written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared import EOS, PAD
from shared.app.cli import main
from shared.app.experiment import ALPHABET, QUICK, RULES, accuracy, models_of
from shared.text.data import build_tokenizers


class _Answers:
    """A stand-in backend that answers each question with ``answer_of(question)``."""

    def __init__(self, answer_of, src_tok, tgt_tok):
        self.answer_of, self.src_tok, self.tgt_tok = answer_of, src_tok, tgt_tok

    def greedy_decode(self, model, src, max_len):
        rows = np.full((len(src), max_len), PAD, dtype=np.int64)    # (B, max_len)
        for row, ids in enumerate(src):
            said = self.tgt_tok.encode(self.answer_of(self.src_tok.decode(ids)))
            said = [*said, EOS][:max_len]  # cut at max_len, as a real search is
            rows[row, : len(said)] = said
        return rows


@pytest.mark.parametrize(("answer_of", "exact", "token"), [
    (lambda q: q[::-1], 1.0, 1.0),                      # every answer right
    (lambda q: q[::-1][:3], 0.0, 3 / 6),                # only the first 3 of 6 letters
    (lambda q: q[::-1][:5] + "?", 0.0, 5 / 6),          # the last letter wrong
    (lambda q: q[::-1] + "a", 0.0, 1.0),                # right letters, then one too many
])
def test_exact_and_per_token_accuracy(answer_of, exact, token):
    src_tok, tgt_tok = build_tokenizers([(ALPHABET, ALPHABET + "?")])
    backend = _Answers(answer_of, src_tok, tgt_tok)
    assert accuracy(backend, None, "reverse", 6, 5, src_tok, tgt_tok, seed=7) == (
        pytest.approx(exact), pytest.approx(token))


def test_every_model_has_the_same_budget_and_attention_is_at_the_smallest_size():
    assert models_of(QUICK) == [("none", 64), ("none", 256), ("luong", 64), ("bahdanau", 64)]
    assert RULES["sort"]("dbca") == "abcd" and RULES["reverse"]("abc") == "cba"


def test_a_tiny_quick_run_writes_results_table_and_plot(tmp_path, capsys):
    out = tmp_path / "tv"
    assert main(["experiment", "thought-vector", "--quick", "--tasks", "reverse,sort",
                 "--hidden-sizes", "6,10", "--lengths", "3,5", "--steps", "4",
                 "--eval-per-length", "3", "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["settings"]["measured_lengths"] == [3, 4, 5]
    models = [(r["task"], r["model"]) for r in report["results"]]
    assert models == [(task, name) for task in ("reverse", "sort") for name in
                      ("no attention H=6", "no attention H=10", "luong H=6", "bahdanau H=6")]
    for r in report["results"]:
        assert [x["length"] for x in r["by_length"]] == [3, 4, 5]
        assert all(0 <= x["exact"] <= x["token"] <= 1 for x in r["by_length"]), r
        assert r["parameters"] > 0 and np.isfinite(r["final_loss"])
    table = (out / "results.md").read_text()
    assert "### sort: exact-match accuracy by question length" in table
    assert "| luong H=6 |" in table
    pytest.importorskip("matplotlib")
    assert (out / "accuracy-vs-length.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("flag", "value"), [("--lengths", "5,3"), ("--hidden-sizes", "0"),
                                             ("--tasks", "addition"), ("--steps", "-2")])
def test_bad_settings_are_one_line_and_exit_2(tmp_path, capsys, flag, value):
    assert main(["experiment", "thought-vector", flag, value, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("seq2seq-rosetta: error: argument") and error.count("\n") == 1
