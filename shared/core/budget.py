"""How much memory a piece of work may plan for, and the check that refuses more up front.

A request that cannot fit should be refused before it starts, with the figure
and what to lower, not answered minutes later by a ``MemoryError`` traceback
(or by the system killing the process).  The work that can grow without bound
from one small number -- a beam search's token history (beam x max_len), a
parity run over ``--n`` questions -- estimates the bytes of its largest arrays
and calls ``check_memory`` first.

The estimates count the arrays whose size is known before the work starts; the
frameworks' own scratch memory comes on top, so the cap is kept well below a
laptop's memory.
"""

from __future__ import annotations

# 1 GiB: far above what any sensible question needs (a beam of 10 over 64
# questions with max_len 100 plans for 1 MiB), far below a machine's memory.
MEMORY_CAP = 1 << 30


def gib(n_bytes: float) -> str:
    """A size for people: "7.45 GiB", "0.01 GiB", "2,512 GiB"."""
    size = n_bytes / (1 << 30)
    return f"{size:,.0f} GiB" if size >= 100 else f"{size:.3g} GiB"


def check_memory(needed: int, what: str, advice: str) -> None:
    """Refuses work whose planned arrays exceed ``MEMORY_CAP``.

    Args:
        needed: the estimated bytes.
        what: the work, for the message, e.g. "beam search with beam_size 1000 and
            max_len 1000000 over 1 question".
        advice: what to lower, e.g. "lower beam_size or max_len".

    Raises:
        ValueError: ``needed > MEMORY_CAP``; the message gives both figures and the advice.
    """
    if needed > MEMORY_CAP:
        raise ValueError(
            f"{what} would need about {gib(needed)} of memory, over the {gib(MEMORY_CAP)} "
            f"cap; {advice}"
        )
