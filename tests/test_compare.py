"""Output comparison: where the largest difference is, masking, what a failure says, the tables.

Legend: B batch, T target length, V vocabulary, L layers, H hidden.
"""

import re

import numpy as np
import pytest

from shared.core.compare import (
    LOGITS_ATOL,
    STATE_ATOL,
    Comparison,
    agreement,
    assert_close,
    compare,
    format_table,
    max_abs_diff,
)
from shared.ladder import Row, format_ladder, worst_by_rung
from shared.ladder import table as ladder_table


def _pair(rng, shape=(2, 3, 4)):
    expected = rng.standard_normal(shape).astype(np.float32)
    return expected.copy(), expected


def test_tolerances():
    assert STATE_ATOL == 1e-5 and LOGITS_ATOL == 1e-4


def test_max_abs_diff_finds_the_largest_and_where(rng):
    actual, expected = _pair(rng)  # (L, B, H)
    actual[0, 1, 2] += 3e-3
    actual[1, 2, 3] -= 5e-3
    diff, where = max_abs_diff(actual, expected)
    assert where == (1, 2, 3)
    assert diff == pytest.approx(5e-3, rel=1e-3)
    assert max_abs_diff(expected, expected) == (0.0, (0, 0, 0))


def test_mask_over_leading_axes_ignores_padded_steps(rng):
    actual, expected = _pair(rng, (2, 4, 5))  # (B, T, V)
    actual[1, 3, 0] += 1.0  # a PAD step: row 1 has length 3
    actual[0, 2, 4] += 2e-3
    mask = np.array([[True] * 4, [True, True, True, False]])  # (B, T)
    diff, where = max_abs_diff(actual, expected, mask)
    assert where == (0, 2, 4) and diff == pytest.approx(2e-3, rel=1e-3)
    assert max_abs_diff(actual, expected)[1] == (1, 3, 0)  # without the mask it dominates
    result = compare("logits", actual, expected, LOGITS_ATOL, mask)
    assert not result.ok and result.where == (0, 2, 4)
    # With no difference inside the mask, the place reported is still inside it.
    actual[0, 2, 4] = expected[0, 2, 4]
    first_row_masked = np.array([[False] * 4, [True] * 4])
    assert max_abs_diff(actual, expected, first_row_masked) == (1.0, (1, 3, 0))
    actual[1, 3, 0] = expected[1, 3, 0]
    assert max_abs_diff(actual, expected, first_row_masked) == (0.0, (1, 0, 0))


def test_all_false_mask_compares_nothing(rng):
    actual, expected = _pair(rng)
    actual += 1.0
    assert max_abs_diff(actual, expected, np.zeros((2, 3), bool)) == (0.0, ())
    result = compare("h", actual, expected, STATE_ATOL, np.zeros(2, bool))
    assert result.ok and result.where == () and result.actual is None


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(
        ValueError, match=re.escape("actual has shape (2, 3) but expected has shape (2, 4)")
    ):
        max_abs_diff(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "hand-off c: cannot compare: actual has shape "
            "(1, 2, 3) but expected has shape (2, 2, 3)"
        ),
    ):
        compare("hand-off c", np.zeros((1, 2, 3)), np.zeros((2, 2, 3)), STATE_ATOL)


def test_mask_that_does_not_fit_is_refused():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "mask has shape (3,); expected the leading axes of the compared shape (2, 3)"
        ),
    ):
        max_abs_diff(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3, bool))


def test_infinities_and_nans(rng):
    actual, expected = _pair(rng)
    actual[0, 0, 0] = expected[0, 0, 0] = -np.inf  # equal infinities: no difference
    assert max_abs_diff(actual, expected) == (0.0, (0, 0, 0))
    actual[1, 1, 1] = np.nan
    diff, where = max_abs_diff(actual, expected)
    assert np.isnan(diff) and where == (1, 1, 1)
    assert not compare("c", actual, expected, STATE_ATOL).ok


def test_comparison_text_fail_and_ok(rng):
    actual, expected = _pair(rng)
    actual[0, 1, 2] += 3.2e-3
    result = compare("hand-off h layer 0", actual, expected, STATE_ATOL)
    assert isinstance(result, Comparison)
    assert str(result) == "hand-off h layer 0: max |diff| 3.2e-03 at (0, 1, 2) > atol 1e-05  FAIL"
    assert result.actual == pytest.approx(float(actual[0, 1, 2]))
    assert result.expected == pytest.approx(float(expected[0, 1, 2]))
    same = compare("logits", expected, expected, LOGITS_ATOL)
    assert str(same) == "logits: max |diff| 0 at (0, 0, 0) <= atol 1e-04  ok"


def test_assert_close_names_tensor_difference_place_and_values(rng):
    actual, expected = _pair(rng)
    actual[1, 0, 3] = expected[1, 0, 3] + 0.25
    with pytest.raises(AssertionError) as info:
        assert_close("hand-off c layer 1", actual, expected, STATE_ATOL)
    message = str(info.value)
    assert message.startswith("hand-off c layer 1: max |diff| 2.5e-01 at (1, 0, 3) > atol 1e-05")
    assert f"actual {float(actual[1, 0, 3])!r}, expected {float(expected[1, 0, 3])!r}" in message


def test_assert_close_passes_within_tolerance(rng):
    actual, expected = _pair(rng)
    actual[0, 0, 1] += 4e-6
    result = assert_close("h", actual, expected, STATE_ATOL)
    assert result.ok and result.where == (0, 0, 1)


def test_agreement():
    a = np.array([[4, 5, 2, 0], [6, 2, 0, 0], [7, 7, 7, 7], [2, 0, 0, 0]])
    b = a.copy()
    b[1, 1] = 5
    b[2, 3] = 8
    assert agreement(a, b) == 0.5
    assert agreement(a, a) == 1.0
    with pytest.raises(ValueError, match=re.escape("got (4, 4) and (4, 3)")):
        agreement(a, a[:, :3])
    with pytest.raises(ValueError, match="at least one row"):
        agreement(a[:0], a[:0])


def test_format_table_is_aligned(rng):
    actual, expected = _pair(rng)
    actual[0, 0, 0] += 2.5e-3
    rows = [
        compare("hand-off h layer 0", expected, expected, STATE_ATOL),
        compare("logits", actual, expected, LOGITS_ATOL),
    ]
    assert format_table(rows).splitlines() == [
        "quantity            max |diff|  tolerance  result",
        "------------------  ----------  ---------  ------",
        "hand-off h layer 0           0      1e-05  ok",
        "logits                 2.5e-03      1e-04  FAIL",
    ]


def test_format_table_docstring_shows_what_it_prints():
    # The docstring's example is a real `compare` run's figures: the same figures
    # must print the same table, so the example cannot drift from the code.
    rows = [Comparison(name, diff, (0,), atol, True) for name, diff, atol in (
        ("hand-off h layer 0", 1.2e-07, STATE_ATOL),
        ("hand-off c layer 0", 2.4e-07, STATE_ATOL),
        ("logits", 1.2e-07, LOGITS_ATOL),
    )]
    shown = [line.strip() for line in format_table.__doc__.splitlines()]
    for line in format_table(rows).splitlines():
        assert line.strip() in shown, f"format_table's docstring lacks the line {line!r}"


def _ladder_rows(engine="torch", hand_off=5.2e-08, beam_differ=0):
    return [
        Row(engine, "hand-off", "h layer 0", 3.2e-08, STATE_ATOL, True, (4, 5)),
        Row(engine, "hand-off", "c layer 0", hand_off, STATE_ATOL, hand_off <= STATE_ATOL, (3, 5),
            0.5 + hand_off, 0.5),
        Row(engine, "logits", "logits", 2.5e-08, LOGITS_ATOL, True, (1, 0, 0)),
        Row(engine, "final state", "h layer 0", 3.5e-08, STATE_ATOL, True, (0, 6)),
        Row(engine, "final state", "c layer 0", 5e-08, STATE_ATOL, True, (0, 6)),
        Row(engine, "greedy", "tokens", 0, 0, True, rows=5),
        Row(engine, "beam", "tokens", beam_differ, 0, beam_differ == 0,
            (2,) if beam_differ else (), rows=5),
    ]


def test_format_ladder_docstring_shows_what_it_prints():
    # The module docstring's example is torch_impl's figures on a grid model: the same
    # rows must print the same table.
    shown = [line.strip() for line in ladder_table.__doc__.splitlines()]
    for line in format_ladder(_ladder_rows()).splitlines():
        assert line.strip() in shown, f"shared.ladder.table's docstring lacks the line {line!r}"


def test_format_ladder_takes_the_worst_per_rung_and_shows_each_failure_in_full():
    rows = _ladder_rows("keras/jax", hand_off=3e-2, beam_differ=2) + _ladder_rows("torch")
    lines = format_ladder(rows).splitlines()
    assert lines[0].split() == ["engine", "hand-off", "logits", "final", "state", "greedy",
                                "beam", "result"]
    assert lines[2].split() == ["keras/jax", "3e-02", "2.5e-08", "5e-08", "0/5", "2/5", "FAIL"]
    assert lines[3].split() == ["torch", "5.2e-08", "2.5e-08", "5e-08", "0/5", "0/5", "ok"]
    assert lines[4].split() == ["tolerance", "1e-05", "1e-04", "1e-05", "exact", "exact"]
    assert lines[5:] == [
        "FAIL keras/jax: hand-off c layer 0: max |diff| 3e-02 at (3, 5) > atol 1e-05  FAIL; "
        "actual 0.53, expected 0.5",
        "FAIL keras/jax: beam tokens: 2 of 5 rows differ, the first row 2  FAIL",
    ]
    assert worst_by_rung(rows)["keras/jax"] == {"hand-off": 3e-2, "logits": 2.5e-08,
                                                "final state": 5e-08, "greedy": 0, "beam": 2}


def test_a_nan_is_the_worst_of_its_rung():
    rows = _ladder_rows()
    rows[0] = Row("torch", "hand-off", "h layer 0", float("nan"), STATE_ATOL, False, (0, 0))
    assert "nan" in format_ladder(rows).splitlines()[2]
    assert np.isnan(worst_by_rung(rows)["torch"]["hand-off"])
