"""How two backends' outputs are compared: one tolerance table, one way to report a difference.

The parity tests, the CLI's ``compare`` command and the demo all ask the same
question -- do the Keras and the PyTorch model (or either and the NumPy
reference) compute the same numbers? -- and answer it here, so a failure always
reads the same: which tensor, the largest difference, where, and both values.

Shape legend: B batch, T target length, V vocabulary, L layers, H hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Tolerances for float32 on CPU, written down once with their reason.  float32
# keeps about 7 significant digits (eps = 1.2e-7), and two frameworks add the
# same products in different orders (different matmul kernels), so results differ
# in the last bits and the differences grow through L layers and S or T steps.
# h = o * tanh(c) stays within (-1, 1) and c grows slowly, so 1e-5 leaves ample
# room for rounding while catching any real bug (a swapped gate or a missed mask
# moves values by 1e-2 or more).  Logits are sums of H_dec products with the
# output weights, larger numbers with proportionally larger rounding, hence 1e-4.
# On GPUs these hold only with TF32 turned off, for matmuls and for cuDNN's RNNs
# (docs/gpu-parity.md): TF32 keeps 10 mantissa bits (about 1e-3 relative), which
# alone would exceed both.
STATE_ATOL = 1e-5  # the hand-off (h, c), and any LSTM state
LOGITS_ATOL = 1e-4  # teacher-forced and per-step decoder logits

# Training, between frameworks: one step's loss and gradients relative to the largest value
# of the tensor (float32 sums in two orders), and the losses of 50 Adam steps, where Adam's
# division by sqrt(v) turns rounding in near-zero gradients into visible steps.  With one
# Adam rule on both sides (keras_impl/optimizer.py) those losses agree to a few 1e-6 on
# every Keras backend; Keras's own rule (epsilon before the bias correction) moves them by
# 1.8e-4 to 2.8e-4, which 1e-4 catches.
GRADIENT_RTOL = 1e-4
ADAM_LOSS_ATOL = 1e-4

# float64 against float64: the reference against equations written out by hand, or against
# itself on another batch.  The same operations summed in another order differ by a few
# units in the 16th digit; 1e-12 leaves room for that and for nothing else.
FLOAT64_ATOL = 1e-12


def max_abs_diff(
    actual: object, expected: object, mask: object = None
) -> tuple[float, tuple[int, ...]]:
    """The largest |actual - expected| and where it is.

    Args:
        actual: an array (or anything ``np.asarray`` accepts).
        expected: an array of the same shape.
        mask: optional booleans over the leading axes of the arrays, e.g.
            (B, T) for logits (B, T, V); only positions where it is True count
            (use it to ignore PAD steps).

    Returns:
        ``(diff, index)``: the largest difference as a float, and its full index
        into the arrays.  Equal values (infinities included) differ by 0; a NaN
        on either side differs by NaN, which no tolerance accepts.  With no
        position to compare, ``(0.0, ())``.

    Raises:
        ValueError: the shapes differ, or the mask does not fit the leading axes.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(
            f"cannot compare: actual has shape {actual.shape} but expected has shape "
            f"{expected.shape}"
        )
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities give 0 below
        diff = np.where(actual == expected, 0.0, np.abs(actual - expected))
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != actual.shape[: mask.ndim]:
            raise ValueError(
                f"mask has shape {mask.shape}; expected the leading axes of the compared "
                f"shape {actual.shape}"
            )
        mask = mask.reshape(mask.shape + (1,) * (actual.ndim - mask.ndim))
        if not mask.any():
            return 0.0, ()
        # -1 is below every real difference, so the place reported is always inside the mask.
        diff = np.where(mask, diff, -1.0)
    if diff.size == 0:
        return 0.0, ()
    # argmax returns the first NaN if there is one, so a NaN is always reported.
    flat = int(np.argmax(diff))
    index = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    return float(diff[index]), index


@dataclass(frozen=True)
class Comparison:
    """The result of comparing one tensor.

    Attributes:
        name: what was compared, e.g. "hand-off h layer 0".
        max_abs_diff: the largest |actual - expected| (NaN if a NaN was found).
        where: the index of that difference; () when nothing was compared.
        atol: the tolerance it was held to.
        ok: max_abs_diff <= atol.
        actual: the actual value at ``where`` (None when nothing was compared).
        expected: the expected value at ``where`` (None when nothing was compared).
    """

    name: str
    max_abs_diff: float
    where: tuple[int, ...]
    atol: float
    ok: bool
    actual: float | None = None
    expected: float | None = None

    def __str__(self) -> str:
        relation, verdict = ("<=", "ok") if self.ok else (">", "FAIL")
        return (
            f"{self.name}: max |diff| {sci(self.max_abs_diff)} at {self.where} "
            f"{relation} atol {sci(self.atol)}  {verdict}"
        )


def compare(
    name: str, actual: object, expected: object, atol: float, mask: object = None
) -> Comparison:
    """Compares two arrays against an absolute tolerance.

    Args:
        name: what is compared, for messages, e.g. "logits".
        actual: the array under test.
        expected: the array it should equal.
        atol: the largest allowed |actual - expected|, e.g. STATE_ATOL.
        mask: optional booleans over the leading axes (see ``max_abs_diff``).

    Returns:
        A Comparison.

    Raises:
        ValueError: the shapes differ or the mask does not fit (named after ``name``).
    """
    try:
        diff, where = max_abs_diff(actual, expected, mask)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err
    actual, expected = np.asarray(actual), np.asarray(expected)
    values = (None, None)
    if actual.size and (mask is None or np.any(mask)):
        values = (float(actual[where]), float(expected[where]))
    # `diff <= atol` is False for NaN, so a NaN always fails.
    return Comparison(name, diff, where, atol, bool(diff <= atol), *values)


def assert_close(
    name: str, actual: object, expected: object, atol: float, mask: object = None
) -> Comparison:
    """Like ``compare``, but raises when the arrays differ by more than ``atol``.

    Returns:
        The Comparison, when it passes.

    Raises:
        AssertionError: naming the tensor, the largest difference, where it is,
            and the actual and expected values there.
    """
    result = compare(name, actual, expected, atol, mask)
    if not result.ok:
        raise AssertionError(f"{result}; actual {result.actual!r}, expected {result.expected!r}")
    return result


def agreement(tokens_a: object, tokens_b: object) -> float:
    """The fraction of rows whose token sequences are identical (e.g. two backends' greedy output).

    Args:
        tokens_a: int (B, T) token ids.
        tokens_b: int (B, T) token ids.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: the shapes differ, or there are no rows.
    """
    tokens_a = np.asarray(tokens_a)
    tokens_b = np.asarray(tokens_b)
    if tokens_a.shape != tokens_b.shape or tokens_a.ndim != 2:
        raise ValueError(
            f"agreement needs two (B, T) token arrays of one shape; got {tokens_a.shape} "
            f"and {tokens_b.shape}"
        )
    if tokens_a.shape[0] == 0:
        raise ValueError("agreement needs at least one row; got an empty batch")
    return float(np.mean(np.all(tokens_a == tokens_b, axis=1)))


def format_table(comparisons: Sequence[Comparison]) -> str:
    """A plain-text table of comparisons, one row each, columns aligned.

    Example, as ``seq2seq-rosetta compare`` printed it for a one-layer LSTM
    checkpoint (a row over its tolerance reads FAIL in the last column):

        quantity            max |diff|  tolerance  result
        ------------------  ----------  ---------  ------
        hand-off h layer 0     1.2e-07      1e-05  ok
        hand-off c layer 0     2.4e-07      1e-05  ok
        logits                 1.2e-07      1e-04  ok
    """
    header = ("quantity", "max |diff|", "tolerance", "result")
    rows = [
        (c.name, sci(c.max_abs_diff), sci(c.atol), "ok" if c.ok else "FAIL") for c in comparisons
    ]
    return format_columns(header, rows, align="<>><")


def format_columns(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """Text cells as aligned columns under a header and a rule: every table the project prints.

    Args:
        header: one title per column.
        rows: the cells, one sequence of strings per row.
        align: one character per column, "<" (left) or ">" (right).  Lines carry no
            trailing spaces.
    """
    if len(align) != len(header) or set(align) - {"<", ">"}:
        raise ValueError(f"align must be one '<' or '>' per column ({len(header)}); got {align!r}")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = tuple("-" * width for width in widths)
    return "\n".join(
        "  ".join(cell.ljust(width) if side == "<" else cell.rjust(width)
                  for cell, width, side in zip(row, widths, align, strict=True)).rstrip()
        for row in [header, rule, *rows]
    )


def sci(value: float) -> str:
    """Two significant digits: 1.0e-05 -> "1e-05", 3.2e-03 -> "3.2e-03", 0 -> "0"."""
    if value == 0:
        return "0"
    text = f"{value:.1e}"
    return text.replace(".0e", "e")
