"""The held-out pairs a run is scored on, chosen before training from the seed alone.

    train_pairs, held_out = split_pairs(pairs, count, seed)        # a file: some of its pairs
    held_out = fresh_task_pairs("dates", count, seed, train_pairs)  # a built-in task: new ones

A file's pairs are split: ``count`` of them, drawn by a generator seeded apart from the
batches' shuffles, are held out, and both parts keep the file's order.  A built-in
task makes new pairs instead, from its own seeded stream, leaving out every
question the training pairs hold (``addition`` has only 10 000 questions: at
``--n 4000`` a third of new pairs would otherwise be questions seen in training).
The same seed gives the same split in every process and framework, so a resumed
run holds out what the first part of it held out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.core.checks import check_count, check_fraction, check_seed
from shared.text.tasks import load_task

# The fraction held out when none is given (see the train command's --val-split).
DEFAULT_FRACTION = 0.1
# A task is asked for this many times the pairs needed, at most this many times, before
# it is taken to have too few unseen questions.
_DRAWS = (4, 16, 64)


def held_out_seed(seed: int) -> int:
    """The seed of the held-out draws: a stream of its own, apart from seed + epoch's shuffles."""
    return int(np.random.SeedSequence([check_seed(seed), 1]).generate_state(1)[0])


def held_out_count(fraction: float, pairs: int) -> int:
    """How many of ``pairs`` pairs a ``--val-split`` of ``fraction`` holds out (rounded)."""
    return round(check_fraction(fraction, "val_split") * pairs)


def split_pairs(pairs: Sequence[tuple[str, str]], count: int, seed: int
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(training pairs, held-out pairs): ``count`` pairs drawn with the seed, both in file order.

    Raises:
        ValueError: count is not in [1, len(pairs) - 1] (both parts need a pair).
    """
    count = check_count(count, "the held-out count", 1, len(pairs) - 1)
    held = set(np.random.default_rng(held_out_seed(seed)).permutation(len(pairs))[:count].tolist())
    train = [pair for i, pair in enumerate(pairs) if i not in held]
    return train, [pair for i, pair in enumerate(pairs) if i in held]


def fresh_task_pairs(task: str, count: int, seed: int,
                     train_pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``count`` new pairs of a built-in task whose questions are not among the training pairs'.

    Raises:
        ValueError: the task has too few questions left unseen (a small task, a large --n).
    """
    count = check_count(count, "the held-out count")
    seen = {question for question, _ in train_pairs}
    for times in _DRAWS:
        # load_task's pairs for n are the first n of its stream: each draw extends the last.
        fresh = [pair for pair in load_task(task, times * count, held_out_seed(seed))
                 if pair[0] not in seen]
        if len(fresh) >= count:
            return fresh[:count]
    raise ValueError(f"task {task!r} has too few questions unseen in training to hold out "
                     f"{count} pairs: {len(fresh)} of {_DRAWS[-1] * count} new pairs were unseen")
