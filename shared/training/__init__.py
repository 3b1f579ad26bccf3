"""What both frameworks' trainers share: argument checks, the divergence check, batches.

May import: shared.core, shared.text, shared.layout, shared.checkpoint; NumPy and the
standard library.
"""
