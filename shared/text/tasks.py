"""Small synthetic question/answer tasks that need no download.

Each task is a rule a seq2seq model has to learn from examples alone, made
so that a small character-level LSTM learns it in seconds and anyone can check
an answer by eye:

    reverse   "abcde"            -> "edcba"       the answer is the question backwards
    sort      "dbca"             -> "abcd"        the letters in alphabetical order
    addition  "12+7"             -> "19"          the sum, written in digits
    dates     "Nov 26, 2026"     -> "2026-11-26"  a date written by people, as ISO 8601

``reverse`` is the classic first test of a seq2seq model: the encoder must hold
the whole question in its hand-off (h, c), because the first answer letter is
the last question letter.  Questions stay at most 20 characters long.

The pairs come from ``numpy.random.default_rng(seed)`` alone, never from global
random state: the same (name, n, seed) gives the same pairs in every process,
so both backends train on identical data.

Example:

    >>> load_task("addition", 3, seed=0)
    [('85+63', '148'), ('51+26', '77'), ('30+4', '34')]
"""

from __future__ import annotations

import datetime
import string
from collections.abc import Callable

import numpy as np

from shared.core.checks import check_count, check_seed

TASKS = {
    "reverse": "reverse 3-8 lowercase letters: 'abcde' -> 'edcba'",
    "sort": "sort 3-8 lowercase letters: 'dbca' -> 'abcd'",
    "addition": "add two numbers 0-99: '12+7' -> '19'",
    "dates": "rewrite a date (1950-2049) as ISO 8601: 'Nov 26, 2026' -> '2026-11-26'",
}

# Spelled out rather than taken from `calendar`, whose names follow the locale.
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

_FIRST_DAY = datetime.date(1950, 1, 1)
_DAYS = (datetime.date(2049, 12, 31) - _FIRST_DAY).days + 1


def load_task(name: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Makes ``n`` question/answer pairs of a built-in task.

    Args:
        name: one of ``TASKS``.
        n: how many pairs, >= 1.  Pairs may repeat (small tasks have few
            distinct questions).
        seed: an integer in [0, 2**32); the same seed gives the same pairs.

    Returns:
        A list of ``n`` (question, answer) string pairs.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    n, seed = check_count(n, "n"), check_seed(seed)
    rng = np.random.default_rng(seed)
    make = _MAKERS[name]
    return [make(rng) for _ in range(n)]


def _letters(rng: np.random.Generator) -> str:
    length = int(rng.integers(3, 9))  # 3..8
    return "".join(string.ascii_lowercase[i] for i in rng.integers(0, 26, size=length))


def _reverse(rng: np.random.Generator) -> tuple[str, str]:
    question = _letters(rng)
    return question, question[::-1]


def _sort(rng: np.random.Generator) -> tuple[str, str]:
    question = _letters(rng)
    return question, "".join(sorted(question))


def _addition(rng: np.random.Generator) -> tuple[str, str]:
    a, b = (int(x) for x in rng.integers(0, 100, size=2))
    return f"{a}+{b}", str(a + b)


def _dates(rng: np.random.Generator) -> tuple[str, str]:
    date = _FIRST_DAY + datetime.timedelta(days=int(rng.integers(0, _DAYS)))
    d, m, y, month = date.day, date.month, date.year, MONTHS[date.month - 1]
    # Several ways people write the same day; the answer is always the ISO form.
    # Day-first with dots ("26.11.2026") is unambiguous where "11/26" would not be.
    formats = (
        f"{d} {month} {y}",  # 26 November 2026
        f"{month} {d}, {y}",  # November 26, 2026
        f"{d} {month[:3]} {y}",  # 26 Nov 2026
        f"{month[:3]} {d}, {y}",  # Nov 26, 2026
        f"{d:02d}.{m:02d}.{y}",  # 26.11.2026
    )
    return formats[int(rng.integers(0, len(formats)))], date.isoformat()


_MAKERS: dict[str, Callable[[np.random.Generator], tuple[str, str]]] = {
    "reverse": _reverse,
    "sort": _sort,
    "addition": _addition,
    "dates": _dates,
}
