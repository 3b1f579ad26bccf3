"""The checks of single numbers, written once: counts, seeds, positive real numbers.

Every count a person gives (epochs, batch_size, max_len, beam_size, a thread
count, ``--n``) and every seed goes through these, from Python and from the
command line alike, so each is refused with the same words wherever it comes in:

    epochs must be an integer >= 1; got 0
    max_len must be an integer >= 1; got 2.5 (float)
    seed must be an integer in [0, 4294967295]; got -1
    lr must be a positive finite number; got inf
    val_split must be a number in (0, 1); got 1.5

The command line's flag types (``shared.app.flags``) use the same rules and words.
"""

from __future__ import annotations

import math

import numpy as np

# NumPy and Keras take seeds in [0, 2**32); torch takes more, but one range serves all.
SEED_RANGE = (0, 2**32 - 1)


def is_integer(value: object) -> bool:
    """A Python or NumPy integer, and not a bool (True is an int to Python, never a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """A Python or NumPy integer or float, and not a bool."""
    return is_integer(value) or (isinstance(value, (float, np.floating)))


def count_rule(low: int = 1, high: int | None = None) -> str:
    """What a count must be, in words: "an integer >= 1", "an integer in [0, 9]"."""
    return f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"


def got(value: object) -> str:
    """What came, for a message: the value, and its type where it is not an integer."""
    return f"got {int(value)}" if is_integer(value) else f"got {value!r} ({type(value).__name__})"


def check_count(value: object, name: str, low: int = 1, high: int | None = None) -> int:
    """An integer (Python or NumPy) in [low, high] (no upper bound by default); returns an int.

    Raises:
        ValueError: "{name} must be an integer >= 1; got 0" and the like.
    """
    if not is_integer(value) or value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {count_rule(low, high)}; {got(value)}")
    return int(value)


def check_seed(seed: object, name: str = "seed") -> int:
    """A random seed: an integer (Python or NumPy) in ``SEED_RANGE``; returns an int."""
    return check_count(seed, name, *SEED_RANGE)


def check_positive_number(value: object, name: str) -> float:
    """A finite real number > 0 (a learning rate, a clipping norm); returns a float.

    inf passes ``> 0`` but turns every weight into NaN on the first step, silently,
    so it is refused here with NaN.
    """
    if not is_real(value) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive finite number; {got(value)}")
    return float(value)


def fraction_rule() -> str:
    return "a number in (0, 1)"


def check_fraction(value: object, name: str) -> float:
    """A real number strictly between 0 and 1 (a share of the data); returns a float."""
    if not is_real(value) or not 0 < value < 1:
        raise ValueError(f"{name} must be {fraction_rule()}; {got(value)}")
    return float(value)
