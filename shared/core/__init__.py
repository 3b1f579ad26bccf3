"""The ground floor: what every other floor stands on.

``config`` (the model's settings), ``inputs`` (the checks every entry point runs
on its arguments), ``compare`` (tolerances and the comparison of outputs),
``runtime`` (seeds and thread pools), ``budget`` (the memory a piece of work may
plan for).

May import: nothing of shared; NumPy and the standard library.
"""
