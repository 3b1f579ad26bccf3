"""What every engine's inference API shares: greedy and beam search over a step function.

``search``: greedy and length-normalised beam search, written once in NumPy, for
every engine and the reference.

May import: shared.core, shared.layout; NumPy and the standard library.
"""
