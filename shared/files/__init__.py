"""Reading and writing files safely, for every reader and writer above.

``safe``: regular files only, opened without blocking, sizes checked before any
read, strict JSON.

May import: shared.core; NumPy and the standard library.
"""
