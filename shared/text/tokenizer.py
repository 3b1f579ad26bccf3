"""Text to token ids and back, the same for both backends.

A seq2seq model never sees text, only integer ids.  A ``Tokenizer`` holds one
vocabulary (a list of token strings; a token's id is its index) and turns a
string into ids (``encode``) and ids back into a string (``decode``).

The first four ids are reserved for the special tokens every batch needs, PAD,
BOS, EOS and UNK (``shared.core.tokens`` defines them, beside the config); they are
never produced from text.

Two levels of token:

    char  every character is a token ("abc" -> a, b, c); decode joins with ""
    word  str.split() on whitespace ("the  cat" -> the, cat); decode joins with " "

The vocabulary order is fixed by the data alone, never by hash order: the
specials, then tokens by descending frequency, ties by the token string.  So the
same texts give the same ids in every process, which checkpoints rely on.

Example:

    >>> tok = Tokenizer.build(["hello", "world"])
    >>> tok.tokens[4:]  # "l" is the most frequent, then "o", then ties by string
    ('l', 'o', 'd', 'e', 'h', 'r', 'w')
    >>> tok.encode("low!")  # "!" was never seen
    [4, 5, 10, 3]
    >>> tok.decode([BOS, 4, 5, 10, EOS, PAD])
    'low'
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from shared.core.checks import check_count
from shared.core.tokens import BOS, EOS, PAD, SPECIAL_TOKENS, UNK
from shared.files.atomic import write_atomically
from shared.files.safe import FileRefusedError, loads, read_regular, shown

LEVELS = ("char", "word")

# What a saved tokenizer calls itself.  Bump the version when the layout of the
# dict changes; older code then refuses newer files instead of misreading them.
FORMAT = "seq2seq-rosetta/tokenizer"
VERSION = 1
# The largest tokenizer file ``load`` reads: room for a few million words.
MAX_FILE_BYTES = 64 * 2**20


class Tokenizer:
    """A fixed vocabulary of characters or words.

    Build one from data with ``Tokenizer.build``; the constructor is for
    vocabularies that already exist (``from_dict`` and ``load`` use it).

    Args:
        tokens: every token string in id order, starting with
            ``SPECIAL_TOKENS``.
        level: ``"char"`` or ``"word"``.
    """

    def __init__(self, tokens: Sequence[str], level: str) -> None:
        self._tokens = _checked_tokens(tokens, level, where="Tokenizer")
        self._level = level
        # The specials are left out on purpose: text never turns into them.
        self._ids = {token: i for i, token in enumerate(self._tokens) if i >= len(SPECIAL_TOKENS)}

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        level: str = "char",
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Tokenizer:
        """Makes a vocabulary of the tokens in ``texts``.

        Args:
            texts: the strings to count tokens in (an iterable of str, not one str).
            level: ``"char"`` or ``"word"``.
            min_freq: a token seen fewer times than this is left out (it will
                encode as UNK).
            max_size: the most ids in the whole vocabulary, the 4 specials
                included; the rarest tokens are dropped first.  None: no limit.

        Returns:
            A Tokenizer whose ids are: specials, then tokens by descending count,
            ties broken by the token string.
        """
        _check_level(level, "level")
        check_count(min_freq, "min_freq")
        smallest = len(SPECIAL_TOKENS) + 1
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < smallest
        ):
            raise ValueError(
                f"max_size must be None or an int >= {smallest} (the 4 special tokens and at"
                f" least one more); got {max_size!r}"
            )
        if isinstance(texts, (str, bytes)):
            raise ValueError(
                "texts must be an iterable of strings, not a single "
                f"{type(texts).__name__}; wrap it in a list"
            )
        counts: Counter[str] = Counter()
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(
                    f"texts[{index}] must be a str; got {type(text).__name__} {text!r}"
                )
            counts.update(_split(text, level))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        # Sorting on (count, token) makes the order independent of hash seeds.
        ranked = sorted(
            (token for token, count in counts.items() if count >= min_freq),
            key=lambda token: (-counts[token], token),
        )
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIAL_TOKENS)]
        return cls(SPECIAL_TOKENS + tuple(ranked), level)

    @property
    def level(self) -> str:
        """``"char"`` or ``"word"``."""
        return self._level

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token string in id order (``tokens[i]`` is the token of id i)."""
        return self._tokens

    def __len__(self) -> int:
        """V, the number of ids, specials included."""
        return len(self._tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokenizer):
            return NotImplemented
        return self._level == other._level and self._tokens == other._tokens

    def __repr__(self) -> str:
        return f"Tokenizer(level={self._level!r}, size={len(self)})"

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without BOS or EOS; unknown tokens give UNK.

        Args:
            text: one string.

        Returns:
            A list of ints, one per character (char level) or word (word level).
        """
        if not isinstance(text, str):
            raise ValueError(f"text must be a str; got {type(text).__name__} {text!r}")
        return [self._ids.get(token, UNK) for token in _split(text, self._level)]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of ``ids``, read the way the decoder writes them.

        PAD and BOS are skipped and reading stops at the first EOS, so a row
        of model output (BOS, answer, EOS, then anything) decodes to the answer.
        UNK decodes as "<unk>".

        Args:
            ids: a list of ints or a 1-D integer NumPy array.

        Returns:
            The characters joined with "" (char level) or the words joined with
            one space (word level).
        """
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1:
                raise ValueError(f"ids must be 1-D; got an array of shape {ids.shape}")
            ids = ids.tolist()
        if isinstance(ids, (str, bytes)):
            raise ValueError(f"ids must be a sequence of ints; got {type(ids).__name__}")
        pieces = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise ValueError(f"ids must be ints; got {type(i).__name__} {i!r}")
            if not 0 <= i < len(self._tokens):
                raise ValueError(f"id {i} is outside the vocabulary [0, {len(self._tokens)})")
            if i == EOS:
                break
            if i not in (PAD, BOS):
                pieces.append(self._tokens[i])
        return ("" if self._level == "char" else " ").join(pieces)

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``format``, ``version``, ``level`` and ``tokens``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "level": self._level,
            "tokens": list(self._tokens),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Tokenizer:
        """The inverse of ``to_dict``; anything malformed is a ValueError."""
        return _from_dict(data, where="tokenizer dict")

    def save(self, path: str | os.PathLike) -> None:
        """Writes ``to_dict()`` as JSON to ``path``.

        The file is ASCII (other characters are escaped), so any text survives
        whatever encoding the reader assumes; it is written whole or not at all
        (``shared.files.atomic``).
        """
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        write_atomically(path, text.encode("ascii"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Reads a file written by ``save``.

        The path must name a regular file (a symlink to one is fine) of at most
        ``MAX_FILE_BYTES``; its JSON is parsed strictly (``shared.files.safe.loads``).

        Raises:
            ValueError: the file is missing, not a regular file, too large, not strict
                JSON (corrupt or truncated), not a tokenizer, or written by a newer
                version; the one-line message names the file.
        """
        where = f"tokenizer file {shown(path)}"
        try:
            raw = read_regular(path, "tokenizer file", MAX_FILE_BYTES)
        except FileRefusedError as refused:
            raise ValueError(f"{where}: {refused.reason}") from None
        try:
            data = loads(raw, path, MAX_FILE_BYTES)
        except FileRefusedError as refused:
            raise ValueError(f"{where} {refused.reason}") from None
        return _from_dict(data, where=where)


def _split(text: str, level: str) -> list[str]:
    return list(text) if level == "char" else text.split()


def _check_level(level: object, name: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, LEVELS))}; got {level!r}")


def _from_dict(data: object, where: str) -> Tokenizer:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object; got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ValueError(f"{where}: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    check_count(version, f"{where}: version")
    if version > VERSION:
        raise ValueError(
            f"{where}: written by format version {version}; this code reads up to version"
            f" {VERSION} (upgrade seq2seq-rosetta)"
        )
    expected = {"format", "version", "level", "tokens"}
    if set(data) != expected:
        extra, missing = sorted(set(data) - expected), sorted(expected - set(data))
        raise ValueError(f"{where}: unknown keys {extra}, missing keys {missing}")
    _check_level(data["level"], f"{where}: level")
    return Tokenizer(_checked_tokens(data["tokens"], data["level"], where), data["level"])


def _checked_tokens(tokens: object, level: str, where: str) -> tuple[str, ...]:
    """The tokens as a tuple, after checking they can form a vocabulary."""
    _check_level(level, f"{where}: level")
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
        raise ValueError(f"{where}: tokens must be a list of str; got {type(tokens).__name__}")
    tokens = tuple(tokens)
    if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
        raise ValueError(
            f"{where}: tokens must start with {list(SPECIAL_TOKENS)}; got"
            f" {list(tokens[: len(SPECIAL_TOKENS)])}"
        )
    seen = set()
    for i, token in enumerate(tokens[len(SPECIAL_TOKENS) :], start=len(SPECIAL_TOKENS)):
        if not isinstance(token, str):
            raise ValueError(f"{where}: token {i} must be a str; got {type(token).__name__}")
        if level == "char" and len(token) != 1:
            raise ValueError(f"{where}: token {i} of a char vocabulary is {token!r}, not 1 char")
        if level == "word" and (not token or any(ch.isspace() for ch in token)):
            raise ValueError(f"{where}: token {i} of a word vocabulary is {token!r}")
        if token in seen or token in SPECIAL_TOKENS:
            raise ValueError(f"{where}: token {token!r} appears twice")
        seen.add(token)
    return tokens
