"""The command line's flag types and checks, on the rules of ``shared.core.checks``.

A flag is refused with the same words as the Python argument it becomes
(``argument --epochs: must be an integer >= 1; got 0``), before any work starts;
``shared.app.cli.main`` prints the one line and exits 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared.core.checks import SEED_RANGE, count_rule, fraction_rule


class UsageError(Exception):
    """A mistake in how the command was called."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:30] + "...")


def count(low: int = 1, high: int | None = None):
    """A flag type: an integer in [low, high]; argparse names the flag in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {_shown(text)}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {count_rule(low, high)}; got {value}")
        return value

    return parse


COUNT = count(1)
SEED = count(*SEED_RANGE)


def positive_number(text: str) -> float:
    """A flag type: a finite real number > 0 (a learning rate, a norm)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {_shown(text)}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number; got {text}")
    return value


def bounded_number(low: float, high: float):
    """A flag type: a finite real number in [low, high] (NaN, inf and 1e39 are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid float value: {_shown(text)}") from None
        if not low <= value <= high:  # False for NaN too
            raise argparse.ArgumentTypeError(
                f"must be a finite number in [{low:g}, {high:g}]; got {_shown(text)}")
        return value

    return parse


def say_replaced(folder: Path, names: tuple[str, ...], flag: str = "--out") -> list[Path]:
    """Prints which of ``names`` in ``folder`` a run will replace, before it starts; returns them.

    Two runs into one folder end with the last writer's files: saying so up front
    is what lets the second one be stopped in time.
    """
    used = [folder / name for name in names if (folder / name).exists()]
    if used:
        print(f"{flag} {folder} already holds {', '.join(path.name for path in used)}: "
              f"{'it' if len(used) == 1 else 'they'} will be replaced when this run ends")
    return used


def fraction(text: str) -> float:
    """A flag type: a number strictly between 0 and 1 (a share of the data)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {_shown(text)}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be {fraction_rule()}; got {text}")
    return value


def output_dir(text: str, flag: str = "--out") -> Path:
    """The directory a command will write to, refused now if it cannot be: before any work.

    It need not exist yet (it is created with its parents at the end), but it
    must not be a file, and its nearest existing folder must be writable.
    """
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {text} is a file, not a directory; give a directory to write "
                         "into (it is created if missing)")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {text} cannot be created: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {text} cannot be written: {existing} is not writable")
    return path
