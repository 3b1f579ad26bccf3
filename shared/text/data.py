"""Question/answer pairs in, padded id arrays out: the batches both backends train on.

A seq2seq model is trained with "teacher forcing": the decoder is fed the true
answer, one token behind, and learns to predict the next one.  So each answer
becomes two rows:

    tgt_in   BOS  1   9          the decoder reads BOS + answer ...
    tgt_out   1   9  EOS         ... and learns to predict answer + EOS

The target is ahead of the input by one step: at step t the decoder has read
tgt_in[t] = answer[t-1] and must output tgt_out[t] = answer[t].  The final EOS
teaches it when to stop.

Rows of different lengths are post-padded with PAD (0) to the longest in the
batch, so a row's length is its number of non-PAD ids.  Shape legend:
B batch, S source length, T target length.

Batches are plain int64 NumPy arrays made in a fixed order from a seed, so the
Keras and the PyTorch model see exactly the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from shared.core.checks import check_count
from shared.core.tokens import BOS, EOS, PAD, UNK
from shared.files.safe import FileRefusedError, read_regular, shown
from shared.text.tokenizer import Tokenizer

# The largest pair file ``read_pairs`` reads: it is read whole, and its pairs held in memory.
MAX_PAIRS_BYTES = 2**30
# The longest question or answer, in tokens, that training takes by default.  A
# recurrent model's memory and time grow with the sequence length at every
# layer and step (one 10 MB pair makes a single batch of tens of GB), and a
# model this size learns little from very long pairs; the keras-io and PyTorch
# seq2seq tutorials filter their pairs by length for the same reason.
MAX_LENGTH = 100


class Batch(NamedTuple):
    """One batch of padded id arrays, all int64.

    Attributes:
        src: (B, S) the questions, for the encoder.
        tgt_in: (B, T) BOS + answer, the decoder's input (teacher forcing).
        tgt_out: (B, T) answer + EOS, what the decoder should predict at each step.
    """

    src: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Reads a tab-separated file of question/answer pairs.

    Two layouts, one pair per line:

        question<TAB>answer[<TAB>...]     manythings.org / Tatoeba pair files; further
                                          columns (the attribution) are ignored
        id<TAB>question<TAB>id<TAB>answer  Tatoeba's sentence-pair export, known by its
                                          numeric ids on the first pair's line

    UTF-8, with or without a byte-order mark; lines end in LF, CRLF or a lone CR
    (old Mac files); blank lines are skipped.  The path must name a regular file of
    at most ``MAX_PAIRS_BYTES`` (``shared.files.safe``).

    Args:
        path: the file.

    Returns:
        The (question, answer) pairs in file order.

    Raises:
        ValueError: the file is missing or not a regular file; a line with no tab, an
            empty question or answer, a line that is not UTF-8, a line that breaks the
            export layout of the first one, or no pairs at all; the message names the
            file and the 1-based line number.
    """
    name = shown(path)
    try:
        raw = read_regular(path, "pair file", MAX_PAIRS_BYTES)
    except FileRefusedError as refused:
        raise ValueError(f"{name}: {refused.reason}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    pairs, export, first = [], None, 0
    # bytes.splitlines ends a line at LF, CRLF or CR (and nothing else, unlike str's);
    # decoding line by line lets an error say which line is broken.
    for number, line_bytes in enumerate(raw.splitlines(), start=1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{name}, line {number}: not UTF-8 ({error.reason})") from None
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise ValueError(
                f"{name}, line {number}: expected question<TAB>answer, found no tab in"
                f" {line[:40]!r}"
            )
        if export is None:  # the first pair decides the layout of the whole file
            export, first = _is_export_line(columns), number
        if export and not _is_export_line(columns):
            raise ValueError(
                f"{name}, line {number}: expected id<TAB>question<TAB>id<TAB>answer like"
                f" line {first} of this Tatoeba export, found {line[:40]!r}"
            )
        question, answer = (columns[1], columns[3]) if export else (columns[0], columns[1])
        for part, text in (("question", question), ("answer", answer)):
            if not text.strip():
                raise ValueError(
                    f"{name}, line {number}: the {part} is empty; every pair needs both"
                )
        pairs.append((question, answer))
    if not pairs:
        raise ValueError(f"{name} holds no question/answer pairs")
    return pairs


def _is_export_line(columns: list[str]) -> bool:
    """Tatoeba's sentence-pair export: sentence id, text, translation id, text."""
    return len(columns) == 4 and all(c.isascii() and c.isdigit() for c in columns[::2])


def build_tokenizers(
    pairs: Sequence[tuple[str, str]],
    level: str = "char",
    min_freq: int = 1,
    max_size: int | None = None,
) -> tuple[Tokenizer, Tokenizer]:
    """One tokenizer for the questions and one for the answers.

    Two vocabularies, because question and answer may be different languages
    (or, in ``dates``, different alphabets).

    Args:
        pairs: (question, answer) pairs.
        level, min_freq, max_size: as in ``Tokenizer.build``, for both.

    Returns:
        (src_tokenizer, tgt_tokenizer).
    """
    _check_pairs(pairs)
    src = Tokenizer.build([q for q, _ in pairs], level, min_freq, max_size)
    tgt = Tokenizer.build([a for _, a in pairs], level, min_freq, max_size)
    return src, tgt


def make_batch(
    pairs: Sequence[tuple[str, str]], src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer
) -> Batch:
    """Encodes and pads a list of pairs into one Batch.

    Args:
        pairs: (question, answer) pairs, at least one.
        src_tokenizer: encodes the questions.
        tgt_tokenizer: encodes the answers.

    Returns:
        A Batch with S = the longest question (at least 1, so that a batch of
        empty questions is one column of PAD) and T = the longest answer + 1.
    """
    _check_pairs(pairs)
    src = encode_questions([q for q, _ in pairs], src_tokenizer)  # (B, S)
    answers = [tgt_tokenizer.encode(a) for _, a in pairs]
    tgt_in = pad_ids([[BOS, *answer] for answer in answers])  # (B, T)
    tgt_out = pad_ids([[*answer, EOS] for answer in answers])  # (B, T)
    return Batch(src, tgt_in, tgt_out)


def pad_ids(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """int64 (B, longest, at least 1) of the id sequences, post-padded with PAD."""
    width = max([1, *(len(seq) for seq in sequences)])
    ids = np.full((len(sequences), width), PAD, dtype=np.int64)  # (B, width)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    return ids


def random_ids(
    rng: np.random.Generator,
    lengths: Sequence[int],
    vocab_size: int,
    first: int | None = None,
    width: int | None = None,
) -> np.ndarray:
    """Random token ids of the given row lengths, post-padded: int64 (B, width).

    Every id is one a question may hold, UNK or a vocabulary token (>= 3), never
    PAD, BOS or EOS; ``first`` forces the first id of every non-empty row (BOS for
    a decoder input).  ``width`` defaults to the longest row (at least 1).  The
    tests, the benchmarks and ``compare`` draw their ragged batches here.
    """
    width = max([1, *lengths]) if width is None else width
    ids = np.full((len(lengths), width), PAD, dtype=np.int64)                # (B, width)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(UNK, vocab_size, size=n)
        if first is not None and n > 0:
            ids[row, 0] = first
    return ids


def encode_questions(questions: Sequence[str], tokenizer: Tokenizer) -> np.ndarray:
    """Questions as source ids int64 (B, S), post-padded: what the encoder reads.

    An empty question is a row of PAD; S is at least 1.
    """
    return pad_ids([tokenizer.encode(question) for question in questions])


def drop_long_pairs(
    pairs: Sequence[tuple[str, str]],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    max_length: int = MAX_LENGTH,
    name: str = "max_length",
) -> tuple[list[tuple[str, str]], int]:
    """The pairs whose question and answer both fit in ``max_length`` tokens.

    Args:
        pairs: (question, answer) pairs, at least one.
        src_tokenizer: counts a question's tokens.
        tgt_tokenizer: counts an answer's tokens.
        max_length: the most tokens a question or an answer may have, >= 1
            (BOS and EOS are not counted).
        name: what max_length is called where it was given, for the message
            ("--max-length" on the command line).

    Returns:
        ``(kept, dropped)``: the kept pairs in their order, and how many were dropped.

    Raises:
        ValueError: no pair is short enough; the message gives the shortest length.
    """
    _check_pairs(pairs)
    max_length = _check_max_length(max_length)
    lengths = _pair_lengths(pairs, src_tokenizer, tgt_tokenizer)
    kept = [pair for pair, length in zip(pairs, lengths, strict=True) if length <= max_length]
    if not kept:
        if len(pairs) == 1:
            found = f"the one pair has {lengths[0]} tokens in its question or answer"
        else:
            found = (f"all {len(pairs)} pairs have more; the shortest has {min(lengths)} tokens "
                     "in its question or answer")
        raise ValueError(f"no pair fits in {name} {max_length} tokens: {found}; raise {name}")
    return kept, len(pairs) - len(kept)


def batches(
    pairs: Sequence[tuple[str, str]],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    max_length: int | None = MAX_LENGTH,
) -> Iterator[Batch]:
    """One pass over ``pairs`` in batches (one epoch).

    The order comes from ``np.random.default_rng(seed)`` alone, so both
    backends get identical batches; pass a different seed per epoch for a new
    order.  Every pair appears exactly once; the last batch may be smaller.

    Args:
        pairs: (question, answer) pairs, at least one.
        src_tokenizer: encodes the questions.
        tgt_tokenizer: encodes the answers.
        batch_size: pairs per batch, >= 1.
        shuffle: False keeps the file order.
        seed: the shuffle's seed.
        max_length: the most tokens a question or an answer may have; a longer
            pair is refused (filter first with ``drop_long_pairs``).  None: no limit.

    Returns:
        An iterator of Batch.

    Raises:
        ValueError: bad pairs or batch_size, or a pair longer than max_length.
    """
    # Checked here, not inside the generator, so a mistake fails at the call.
    _check_pairs(pairs)
    check_count(batch_size, "batch_size")
    if max_length is not None:
        max_length = _check_max_length(max_length)
        lengths = _pair_lengths(pairs, src_tokenizer, tgt_tokenizer)
        too_long = [i for i, length in enumerate(lengths) if length > max_length]
        if too_long:
            raise ValueError(
                f"pairs[{too_long[0]}] has {lengths[too_long[0]]} tokens in its question or "
                f"answer, over max_length {max_length} ({len(too_long)} of {len(pairs)} pairs "
                "are); drop them first with shared.text.data.drop_long_pairs, or raise max_length"
            )
    order = np.random.default_rng(seed).permutation(len(pairs)) if shuffle else range(len(pairs))
    order = [int(i) for i in order]
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return (make_batch([pairs[i] for i in chunk], src_tokenizer, tgt_tokenizer) for chunk in chunks)


def _check_pairs(pairs: object) -> None:
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise ValueError(
            f"pairs must be a list of (question, answer) tuples; got {type(pairs).__name__}"
        )
    if not pairs:
        raise ValueError("pairs is empty; a batch needs at least one (question, answer) pair")
    for index, pair in enumerate(pairs):
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(text, str) for text in pair)
        ):
            raise ValueError(
                f"pairs[{index}] must be a (question, answer) pair of str; got {pair!r}"
            )


def _pair_lengths(pairs, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer) -> list[int]:
    """Each pair's longer side, in tokens."""
    return [max(len(src_tokenizer.encode(q)), len(tgt_tokenizer.encode(a))) for q, a in pairs]


def _check_max_length(max_length: object) -> int:
    return check_count(max_length, "max_length")
