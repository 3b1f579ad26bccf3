"""One module per ``seq2seq-rosetta`` command.

May import: every floor of shared, and the engine packages lazily; NumPy and the standard
library.
"""
