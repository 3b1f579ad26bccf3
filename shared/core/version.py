"""The version of seq2seq-rosetta, written once: the package, its files and pip read it."""

__version__ = "0.1.0"
