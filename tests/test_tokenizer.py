"""The tokenizer: fixed special ids, deterministic vocabulary, exact round trips, strict files."""

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import shared
import shared.text.tokenizer
from shared import BOS, EOS, PAD, UNK, Tokenizer
from shared.core.tokens import SPECIAL_TOKENS
from shared.text.tokenizer import FORMAT, MAX_FILE_BYTES, VERSION

REPO = Path(__file__).resolve().parent.parent


def test_special_ids_and_strings_are_fixed():
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert SPECIAL_TOKENS == ("<pad>", "<bos>", "<eos>", "<unk>")
    assert Tokenizer.build(["ab"]).tokens[:4] == SPECIAL_TOKENS


def test_module_examples_run():
    assert doctest.testmod(shared.text.tokenizer).failed == 0


def test_vocabulary_order_is_frequency_then_string():
    tok = Tokenizer.build(["banana", "cab"])  # a:4, b:2, n:2, c:1
    assert tok.tokens == (*SPECIAL_TOKENS, "a", "b", "n", "c")
    assert len(tok) == 8
    assert tok.level == "char"
    assert tok.encode("cabx") == [7, 4, 5, UNK]


def test_min_freq_and_max_size_drop_the_rarest():
    texts = ["the cat", "the dog", "the cat sat"]  # the:3, cat:2, dog:1, sat:1
    assert Tokenizer.build(texts, level="word", min_freq=2).tokens[4:] == ("the", "cat")
    # max_size counts the 4 specials too.
    assert Tokenizer.build(texts, level="word", max_size=6).tokens[4:] == ("the", "cat")
    assert Tokenizer.build(texts, level="word", max_size=5).tokens[4:] == ("the",)
    assert len(Tokenizer.build(texts, level="word", max_size=100)) == 8


def test_word_level_splits_on_any_whitespace():
    tok = Tokenizer.build(["the  cat\tsat\n"], level="word")
    ids = tok.encode(" the cat  sat dog ")
    assert ids == [tok.tokens.index("the"), tok.tokens.index("cat"), tok.tokens.index("sat"), UNK]
    assert tok.decode(ids) == "the cat sat <unk>"


def test_special_strings_in_text_are_not_special_ids():
    tok = Tokenizer.build(["a <eos> b <pad>"], level="word")
    assert "<eos>" not in tok.tokens[4:]
    assert tok.encode("a <eos> b <pad>") == [tok.tokens.index("a"), UNK, tok.tokens.index("b"), UNK]


def test_decode_skips_pad_and_bos_and_stops_at_eos():
    tok = Tokenizer.build(["abc"])
    a, b, c = (tok.tokens.index(ch) for ch in "abc")
    assert tok.decode([BOS, a, PAD, b, EOS, c, c]) == "ab"
    assert tok.decode(np.array([BOS, c, a, EOS, b], dtype=np.int64)) == "ca"
    assert tok.decode(np.array([c, b], dtype=np.int32)) == "cb"
    assert tok.decode([np.int64(a), UNK]) == "a<unk>"
    assert tok.decode([]) == ""
    assert tok.decode([EOS, a]) == ""


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([4, 7], r"id 7 is outside the vocabulary \[0, 7\)"),
        ([-1], r"id -1 is outside the vocabulary \[0, 7\)"),
        (np.array([[4, 5]]), r"ids must be 1-D; got an array of shape \(1, 2\)"),
        ([4, 1.0], r"ids must be ints; got float 1.0"),
        ([True], r"ids must be ints; got bool True"),
        ("abc", r"ids must be a sequence of ints; got str"),
    ],
)
def test_decode_rejects_bad_ids(ids, message):
    with pytest.raises(ValueError, match=message):
        Tokenizer.build(["abc"]).decode(ids)


def test_encode_rejects_non_strings():
    with pytest.raises(ValueError, match=r"text must be a str; got list"):
        Tokenizer.build(["abc"]).encode(["a"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": ["a"], "level": "byte"}, r"level must be one of 'char', 'word'; got 'byte'"),
        ({"texts": ["a"], "min_freq": 0}, r"min_freq must be an integer >= 1; got 0"),
        ({"texts": ["a"], "min_freq": 1.5}, r"min_freq must be an integer >= 1; got 1.5 \(float\)"),
        ({"texts": ["a"], "max_size": 4}, r"max_size must be None or an int >= 5 .*got 4"),
        ({"texts": ["a", 3]}, r"texts\[1\] must be a str; got int 3"),
        ({"texts": "abc"}, r"texts must be an iterable of strings, not a single str"),
    ],
)
def test_build_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Tokenizer.build(**kwargs)


@given(st.text())
def test_char_round_trip_of_any_text(text):
    tok = Tokenizer.build([text])
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert UNK not in ids and PAD not in ids
    assert tok.decode(ids) == text


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_char_round_trip_of_every_text_it_was_built_on(texts):
    tok = Tokenizer.build(texts)
    assert len(tok) == 4 + len(set("".join(texts)))
    for text in texts:
        assert tok.decode(tok.encode(text)) == text


@given(st.text().filter(lambda t: not set(t.split()) & set(SPECIAL_TOKENS)))
def test_word_round_trip_normalises_whitespace(text):
    tok = Tokenizer.build([text], level="word")
    ids = tok.encode(text)
    assert len(ids) == len(text.split())
    assert tok.decode(ids) == " ".join(text.split())


@given(
    st.lists(st.text(alphabet="abcdef \n", max_size=30), max_size=6),
    st.sampled_from(["char", "word"]),
)
def test_vocabulary_is_sorted_by_count_then_token(texts, level):
    tok = Tokenizer.build(texts, level=level)
    split = list if level == "char" else str.split
    counts = {}
    for text in texts:
        for token in split(text):
            counts[token] = counts.get(token, 0) + 1
    keys = [(-counts[token], token) for token in tok.tokens[4:]]
    assert keys == sorted(keys)
    assert set(tok.tokens[4:]) == set(counts)


def test_vocabulary_does_not_depend_on_the_hash_seed():
    # Many tokens with equal counts, first met in set order, which follows the hash
    # seed: a vocabulary that kept meeting order (or set order) would differ per run.
    script = (
        "from shared.text.tokenizer import Tokenizer\n"
        "words = {w + str(i) for i in range(40) for w in ('x', 'y', 'zz')}\n"
        "letters = set('abcdefghijklmnopqrstuvwxyz0123456789')\n"
        "print(Tokenizer.build([' '.join(words)], level='word').tokens)\n"
        "print(Tokenizer.build([''.join(letters)], level='char').tokens)\n"
    )
    outputs = []
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(result.stdout)
    assert outputs[0].count("'") > 200, outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


def test_save_load_round_trip(tmp_path):
    tok = Tokenizer.build(["naïve café", "日本語 text"], level="word")
    path = tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="ascii"))
    assert data["format"] == FORMAT and data["version"] == VERSION
    loaded = Tokenizer.load(str(path))
    assert loaded == tok
    assert loaded.level == "word"
    assert loaded.decode(loaded.encode("café 日本語")) == "café 日本語"


def test_to_dict_from_dict_round_trip_and_copies():
    tok = Tokenizer.build(["hello"])
    data = tok.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Tokenizer.from_dict(data) == tok
    data["tokens"].append("z")
    assert "z" not in tok.tokens
    assert tok != Tokenizer.build(["hello"], level="word")


def _write(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, r"format is 'something-else', expected"),
        ({"version": VERSION + 1}, rf"written by format version {VERSION + 1}; this code reads"),
        ({"version": "1"}, r"version must be an integer >= 1; got '1' \(str\)"),
        ({"level": "byte"}, r"level must be one of 'char', 'word'; got 'byte'"),
        ({"tokens": ["<pad>", "<bos>", "<eos>", "a"]}, r"tokens must start with"),
        ({"tokens": [*SPECIAL_TOKENS, "a", "a"]}, r"token 'a' appears twice"),
        ({"tokens": [*SPECIAL_TOKENS, "ab"]}, r"token 4 of a char vocabulary is 'ab', not 1 char"),
        ({"tokens": [*SPECIAL_TOKENS, 7]}, r"token 4 must be a str; got int"),
        ({"extra": 1}, r"unknown keys \['extra'\], missing keys \[\]"),
    ],
)
def test_load_and_from_dict_reject_bad_contents(tmp_path, change, message):
    data = {**Tokenizer.build(["abc"]).to_dict(), **change}
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(ValueError, match=message) as caught:
        Tokenizer.load(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ValueError, match=message):
        Tokenizer.from_dict(data)


def test_load_rejects_a_truncated_or_corrupt_file(tmp_path):
    good = tmp_path / "good.json"
    Tokenizer.build(["hello world"]).save(good)
    text = good.read_text(encoding="ascii")
    cases = {
        "truncated.json": text[: len(text) // 2],
        "empty.json": "",
        "list.json": "[1, 2]",
    }
    for name, content in cases.items():
        path = _write(tmp_path / name, content)
        with pytest.raises(ValueError) as caught:
            Tokenizer.load(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message, message
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"binary.json is not UTF-8 text"):
        Tokenizer.load(binary)
    with pytest.raises(ValueError, match=r"truncated.json is not valid JSON"):
        Tokenizer.load(tmp_path / "truncated.json")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[" * 100_000, "nests JSON deeper than 64 levels"),
        ('{"format": "seq2seq-rosetta/tokenizer", "version": ' + "7" * 5000 + "}",
         "holds a number written with 5000 characters; at most 300 are read"),
        ('{"format": "x", "format": "seq2seq-rosetta/tokenizer"}',
         "repeats the key 'format' in one JSON object"),
    ],
    ids=["100000 brackets", "5000 digits", "repeated key"],
)
def test_load_refuses_hostile_json_in_one_line(tmp_path, content, reason):
    path = _write(tmp_path / "hostile.json", content)
    with pytest.raises(ValueError) as caught:
        Tokenizer.load(path)
    assert str(caught.value) == f"tokenizer file {path} {reason}"


def test_load_refuses_a_file_over_the_cap_before_reading_it(tmp_path):
    path = tmp_path / "huge.json"
    path.write_bytes(b"")
    os.truncate(path, MAX_FILE_BYTES + 1)  # sparse: no disk
    with pytest.raises(ValueError) as caught:
        Tokenizer.load(path)
    assert str(caught.value) == (
        f"tokenizer file {path}: is {MAX_FILE_BYTES + 1} bytes; a tokenizer file of more than"
        f" {MAX_FILE_BYTES} bytes is not read"
    )


def test_shared_reexports_the_tokenizer():
    assert shared.Tokenizer is Tokenizer
    assert (shared.PAD, shared.BOS, shared.EOS, shared.UNK) == (0, 1, 2, 3)
