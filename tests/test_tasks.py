"""The built-in tasks: right answers, short questions, the same pairs for the same seed."""

import datetime
import doctest
import random

import pytest

import shared
import shared.text.tasks
from shared.text.tasks import MONTHS, TASKS, load_task

DATE_FORMATS = ("%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y", "%d.%m.%Y")


def test_module_examples_run():
    assert doctest.testmod(shared.text.tasks).failed == 0


def test_known_tasks_are_described():
    assert {"reverse", "sort", "addition", "dates"} <= set(TASKS)
    assert all(isinstance(text, str) and text for text in TASKS.values())
    assert shared.TASKS is TASKS and shared.load_task is load_task


@pytest.mark.parametrize("name", sorted(TASKS))
def test_pairs_are_short_strings_and_repeat_per_seed(name):
    pairs = load_task(name, 300, seed=7)
    assert len(pairs) == 300
    assert all(isinstance(q, str) and isinstance(a, str) and q and a for q, a in pairs)
    assert max(len(q) for q, _ in pairs) <= 20
    assert load_task(name, 300, seed=7) == pairs
    assert load_task(name, 300, seed=8) != pairs
    assert load_task(name, 10, seed=7) == pairs[:10]
    assert len(set(pairs)) > 200  # varied, not one pair repeated


@pytest.mark.parametrize("name", sorted(TASKS))
def test_pairs_ignore_global_random_state(name):
    random.seed(1)
    first = load_task(name, 20, seed=3)
    random.seed(2)
    assert load_task(name, 20, seed=3) == first


def test_reverse_and_sort_answers():
    for question, answer in load_task("reverse", 200, seed=0):
        assert question.isalpha() and question.islower() and 3 <= len(question) <= 8
        assert answer == question[::-1]
    for question, answer in load_task("sort", 200, seed=0):
        assert question.isalpha() and question.islower() and 3 <= len(question) <= 8
        assert answer == "".join(sorted(question))
        assert sorted(answer) == sorted(question)
    lengths = {len(q) for q, _ in load_task("reverse", 500, seed=1)}
    assert lengths == set(range(3, 9))


def test_addition_answers():
    pairs = load_task("addition", 500, seed=0)
    for question, answer in pairs:
        left, right = question.split("+")
        assert left.isdigit() and right.isdigit(), question
        assert 0 <= int(left) <= 99 and 0 <= int(right) <= 99
        assert int(answer) == int(left) + int(right), (question, answer)
        assert answer == str(int(answer))  # no leading zeros
    assert max(int(a) for _, a in pairs) > 150  # three-digit sums occur


def _parse_human_date(text):
    for fmt in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).date(), fmt
        except ValueError:
            continue
    raise AssertionError(f"question {text!r} matches none of {DATE_FORMATS}")


def test_dates_answers_are_iso_and_mean_the_question():
    used = set()
    years = set()
    for question, answer in load_task("dates", 1000, seed=0):
        written, fmt = _parse_human_date(question)
        used.add(fmt)
        assert datetime.date.fromisoformat(answer) == written, (question, answer)
        assert len(answer) == 10
        years.add(written.year)
    assert used == set(DATE_FORMATS)
    assert min(years) < 1960 and max(years) > 2040
    assert MONTHS[10] == "November"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("copy", 5, 0), r"unknown task 'copy'; known tasks: reverse, sort, addition, dates"),
        (("reverse", 0, 0), r"n must be an integer >= 1; got 0"),
        (("reverse", 2.0, 0), r"n must be an integer >= 1; got 2.0 \(float\)"),
        (("reverse", 5, -1), r"seed must be an integer in \[0, 4294967295\]; got -1"),
        (("reverse", 5, None),
         r"seed must be an integer in \[0, 4294967295\]; got None \(NoneType\)"),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        load_task(*args)
