"""Reading and writing files safely, for every reader and writer above.

``safe``: regular files only, opened without blocking, sizes checked before any
read, strict JSON.  ``atomic``: ``write_atomically(path, data)`` puts a file in
place whole or not at all; every output goes through it.

May import: shared.core; NumPy and the standard library.
"""
