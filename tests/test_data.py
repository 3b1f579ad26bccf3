"""Pairs to batches: the TSV reader, teacher-forcing shift, post-padding, deterministic order."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import shared
from shared import BOS, EOS, PAD, UNK, Batch, Tokenizer, batches, make_batch, read_pairs
from shared.text.data import build_tokenizers, drop_long_pairs, random_ids

ALPHABET = "abcdefghij"


def _tokenizers():
    return Tokenizer.build([ALPHABET]), Tokenizer.build([ALPHABET.upper()])


# ---- read_pairs --------------------------------------------------------------------------------


def test_read_pairs_tatoeba_format(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_bytes(
        "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\n"
        "\n"
        "Hi.\tSalut !\r\n"
        "   \n"
        "Él\tlui\textra\tmore\n".encode()
    )
    assert read_pairs(path) == [("Go.", "Va !"), ("Hi.", "Salut !"), ("Él", "lui")]
    assert shared.read_pairs is read_pairs


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_read_pairs_reads_every_line_ending(tmp_path, ending):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(ending.join([b"hello\tbonjour", b"bye\tau revoir", b""]))
    assert read_pairs(path) == [("hello", "bonjour"), ("bye", "au revoir")]


def test_read_pairs_counts_cr_only_lines_in_its_messages(tmp_path):
    path = tmp_path / "mac.tsv"
    path.write_bytes(b"a\tb\rc\td\rno tab\r")
    with pytest.raises(ValueError, match=r"mac.tsv, line 3: expected question<TAB>answer"):
        read_pairs(path)


@pytest.mark.parametrize(
    ("line", "part"),
    [(b"\tempty question", "question"), (b"q\t", "answer"), (b"q\t  \tCC-BY", "answer")],
    ids=["no question", "no answer", "spaces for an answer"],
)
def test_read_pairs_refuses_an_empty_question_or_answer_with_its_line(tmp_path, line, part):
    path = tmp_path / "holes.tsv"
    path.write_bytes(b"a\tb\n\n" + line + b"\n")
    with pytest.raises(ValueError) as refused:
        read_pairs(path)
    assert str(refused.value) == f"{path}, line 3: the {part} is empty; every pair needs both"


def test_read_pairs_reads_the_tatoeba_sentence_export(tmp_path):
    """Tatoeba's "sentence pairs" download: id, sentence, id, translation."""
    path = tmp_path / "sentence_pairs.tsv"
    path.write_bytes(
        "1276\tLet's try something.\t4673\tEssayons quelque chose.\n"
        "1277\tI have to go to sleep.\t2862\tJe dois aller dormir, désolé.\n".encode()
    )
    assert read_pairs(path) == [
        ("Let's try something.", "Essayons quelque chose."),
        ("I have to go to sleep.", "Je dois aller dormir, désolé."),
    ]


def test_read_pairs_refuses_a_line_that_leaves_the_export_layout(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_bytes(b"\n1276\tLet's try.\t4673\tEssayons.\nGo.\tVa !\tCC-BY 2.0\n")
    with pytest.raises(ValueError) as refused:
        read_pairs(path)
    assert str(refused.value) == (
        f"{path}, line 3: expected id<TAB>question<TAB>id<TAB>answer like line 2 of this"
        " Tatoeba export, found 'Go.\\tVa !\\tCC-BY 2.0'"
    )


def test_read_pairs_keeps_a_pair_file_whose_question_is_a_number(tmp_path):
    """Only the 4-column, two-id layout is an export; "12<TAB>twelve<TAB>attribution" is a pair."""
    path = tmp_path / "numbers.tsv"
    path.write_bytes(b"12\ttwelve\tCC-BY 2.0 (France)\n7\tseven\tCC-BY 2.0 (France)\n")
    assert read_pairs(path) == [("12", "twelve"), ("7", "seven")]


def test_read_pairs_skips_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbfone\t1\ntwo\t2")
    assert read_pairs(str(path)) == [("one", "1"), ("two", "2")]


def test_read_pairs_names_the_file_and_line_of_a_line_without_tab(tmp_path):
    path = tmp_path / "broken.tsv"
    path.write_text("a\tb\n\nno tab here\nc\td\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.tsv, line 3: expected question<TAB>answer"):
        read_pairs(path)


def test_read_pairs_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("a\tb\ncaf\xe9\tcoffee\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.tsv, line 2: not UTF-8"):
        read_pairs(path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_read_pairs_rejects_a_file_without_pairs(tmp_path, content):
    path = tmp_path / "empty.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"empty.tsv holds no question/answer pairs"):
        read_pairs(path)


# ---- make_batch --------------------------------------------------------------------------------


def test_make_batch_exact_arrays():
    src_tok, tgt_tok = _tokenizers()
    batch = make_batch([("abc", "A"), ("", "JIH")], src_tok, tgt_tok)
    assert isinstance(batch, Batch)
    s = {ch: i for i, ch in enumerate(src_tok.tokens)}
    t = {ch: i for i, ch in enumerate(tgt_tok.tokens)}
    expected_src = [[s["a"], s["b"], s["c"]], [PAD, PAD, PAD]]
    expected_in = [[BOS, t["A"], PAD, PAD], [BOS, t["J"], t["I"], t["H"]]]
    expected_out = [[t["A"], EOS, PAD, PAD], [t["J"], t["I"], t["H"], EOS]]
    np.testing.assert_array_equal(batch.src, expected_src, err_msg="src")
    np.testing.assert_array_equal(batch.tgt_in, expected_in, err_msg="tgt_in")
    np.testing.assert_array_equal(batch.tgt_out, expected_out, err_msg="tgt_out")
    src, tgt_in, tgt_out = batch  # a NamedTuple unpacks
    assert src.dtype == tgt_in.dtype == tgt_out.dtype == np.int64


def test_make_batch_of_empty_questions_has_one_pad_column():
    src_tok, tgt_tok = _tokenizers()
    batch = make_batch([("", "AB"), ("", "")], src_tok, tgt_tok)
    np.testing.assert_array_equal(batch.src, np.zeros((2, 1), dtype=np.int64), err_msg="src")
    np.testing.assert_array_equal(batch.tgt_in[1], [BOS, PAD, PAD], err_msg="tgt_in[1]")
    np.testing.assert_array_equal(batch.tgt_out[1], [EOS, PAD, PAD], err_msg="tgt_out[1]")


_pairs = st.lists(
    st.tuples(st.text(ALPHABET, max_size=9), st.text(ALPHABET.upper(), max_size=9)),
    min_size=1,
    max_size=8,
)


@given(_pairs)
def test_make_batch_shift_by_one_and_post_padding(pairs):
    src_tok, tgt_tok = _tokenizers()
    batch = make_batch(pairs, src_tok, tgt_tok)
    n = len(pairs)
    src_lens = [len(q) for q, _ in pairs]
    tgt_lens = [len(a) + 1 for _, a in pairs]  # BOS + answer, or answer + EOS
    assert batch.src.shape == (n, max(1, *src_lens))
    assert batch.tgt_in.shape == batch.tgt_out.shape == (n, max(tgt_lens))
    for row, (question, answer) in enumerate(pairs):
        s, t = src_lens[row], tgt_lens[row]
        assert src_tok.decode(batch.src[row]) == question
        assert tgt_tok.decode(batch.tgt_in[row]) == answer
        assert tgt_tok.decode(batch.tgt_out[row]) == answer
        # Post-padding: real ids first, then only PAD; a row's length = its non-PAD count.
        assert (batch.src[row, :s] != PAD).all() and (batch.src[row, s:] == PAD).all()
        assert (batch.tgt_in[row, :t] != PAD).all() and (batch.tgt_in[row, t:] == PAD).all()
        assert (batch.tgt_out[row, :t] != PAD).all() and (batch.tgt_out[row, t:] == PAD).all()
        # The target is the input shifted one step ahead.
        assert batch.tgt_in[row, 0] == BOS
        assert batch.tgt_out[row, len(answer)] == EOS
        np.testing.assert_array_equal(
            batch.tgt_in[row, 1:t], batch.tgt_out[row, : t - 1], err_msg=f"shift in row {row}"
        )
        assert EOS not in batch.tgt_in[row] and BOS not in batch.tgt_out[row]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], r"pairs is empty"),
        ("ab", r"pairs must be a list of \(question, answer\) tuples; got str"),
        ([("a", "A"), ("b",)], r"pairs\[1\] must be a \(question, answer\) pair of str"),
        ([("a", 1)], r"pairs\[0\] must be a \(question, answer\) pair of str; got \('a', 1\)"),
    ],
)
def test_make_batch_rejects_bad_pairs(pairs, message):
    with pytest.raises(ValueError, match=message):
        make_batch(pairs, *_tokenizers())


# ---- batches -----------------------------------------------------------------------------------


def _rows(batch_list, tokenizer):
    return [tokenizer.decode(row) for batch in batch_list for row in batch.src]


def test_batches_in_order_keep_the_last_partial_batch():
    pairs = [(ALPHABET[:k], "A" * k) for k in range(1, 8)]
    src_tok, tgt_tok = _tokenizers()
    out = list(batches(pairs, src_tok, tgt_tok, batch_size=3, shuffle=False))
    assert [len(b.src) for b in out] == [3, 3, 1]
    assert _rows(out, src_tok) == [q for q, _ in pairs]
    assert out[0].src.shape == (3, 3) and out[2].src.shape == (1, 7)


def test_batches_shuffle_is_deterministic_and_complete():
    pairs = [(ALPHABET[k % 10] * (1 + k % 4), "AB"[k % 2]) for k in range(23)]
    pairs = [(q + str(k % 10), a) for k, (q, a) in enumerate(pairs)]
    src_tok, tgt_tok = Tokenizer.build([q for q, _ in pairs]), Tokenizer.build(["AB"])
    first = list(batches(pairs, src_tok, tgt_tok, batch_size=5, seed=3))
    again = list(batches(pairs, src_tok, tgt_tok, batch_size=5, seed=3))
    other = list(batches(pairs, src_tok, tgt_tok, batch_size=5, seed=4))
    assert [len(b.src) for b in first] == [5, 5, 5, 5, 3]
    for mine, theirs in zip(first, again, strict=True):
        for name in Batch._fields:
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name), err_msg=name)
    order = _rows(first, src_tok)
    assert sorted(order) == sorted(q for q, _ in pairs)
    assert order != [q for q, _ in pairs]
    assert _rows(other, src_tok) != order
    # The documented recipe: the order is numpy's permutation for that seed.
    expected = [pairs[i][0] for i in np.random.default_rng(3).permutation(len(pairs))]
    assert order == expected


@pytest.mark.parametrize("batch_size", [0, -2, 2.0, True])
def test_batches_rejects_a_bad_batch_size_at_the_call(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1"):
        batches([("a", "A")], *_tokenizers(), batch_size=batch_size)


def test_batches_rejects_empty_pairs_at_the_call():
    with pytest.raises(ValueError, match=r"pairs is empty"):
        batches([], *_tokenizers(), batch_size=2)


def test_build_tokenizers_gives_one_vocabulary_per_side():
    pairs = shared.load_task("dates", 50, seed=0)
    src_tok, tgt_tok = build_tokenizers(pairs)
    assert set(tgt_tok.tokens[4:]) <= set("0123456789-")
    assert "N" in src_tok.tokens or "J" in src_tok.tokens
    batch = make_batch(pairs, src_tok, tgt_tok)
    assert all(tgt_tok.decode(row) == a for row, (_, a) in zip(batch.tgt_out, pairs, strict=True))
    word_src, _ = build_tokenizers([("the cat", "le chat")], level="word", max_size=5)
    assert word_src.tokens[4:] == ("cat",)


# ---- the length limit --------------------------------------------------------------------------


def test_drop_long_pairs_keeps_the_order_and_counts_the_rest():
    """The limit counts tokens of either side: a long question or a long answer is dropped."""
    pairs = [("abc", "A"), ("abcdefghij" * 2, "A"), ("ab", "ABCDEFGHIJ" * 2), ("a", "AB")]
    kept, dropped = drop_long_pairs(pairs, *_tokenizers(), max_length=10)
    assert kept == [pairs[0], pairs[3]] and dropped == 2
    assert drop_long_pairs(pairs, *_tokenizers(), max_length=20) == (pairs, 0)
    with pytest.raises(ValueError, match=re.escape(
            "no pair fits in max_length 1 tokens: all 4 pairs have more; the shortest has 2 "
            "tokens in its question or answer; raise max_length")):
        drop_long_pairs(pairs, *_tokenizers(), max_length=1)


def test_batches_refuse_a_pair_over_max_length_at_the_call():
    """A pair of 10 MB would make one batch of tens of GB in a framework: refused up front."""
    pairs = [("abc", "A"), ("a" * 1000, "A"), ("b" * 200, "B")]
    with pytest.raises(ValueError, match=re.escape(
            "pairs[1] has 1000 tokens in its question or answer, over max_length 100 (2 of 3 "
            "pairs are); drop them first with shared.text.data.drop_long_pairs, or raise "
            "max_length")):
        batches(pairs, *_tokenizers(), batch_size=2)
    unlimited = list(batches(pairs, *_tokenizers(), 3, shuffle=False, max_length=None))
    assert [b.src.shape for b in unlimited] == [(3, 1000)]


# ---- random_ids ---------------------------------------------------------------------------------


def test_random_ids_have_the_lengths_asked_for_real_ids_and_post_padding():
    rng = np.random.default_rng(0)
    ids = random_ids(rng, [3, 0, 1, 5], vocab_size=9, first=BOS, width=6)        # (4, 6)
    assert ids.shape == (4, 6) and ids.dtype == np.int64
    np.testing.assert_array_equal((ids != PAD).sum(axis=1), [3, 0, 1, 5])
    assert (ids[[0, 2, 3], 0] == BOS).all(), "first forces a non-empty row's first id"
    real = ids[:, 1:][ids[:, 1:] != PAD]
    assert real.min() >= UNK and real.max() < 9, "never PAD, BOS or EOS inside a row"
    assert random_ids(rng, [0, 0], 9).shape == (2, 1), "at least one column"
