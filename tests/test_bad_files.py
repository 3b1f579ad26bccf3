"""The bad-input matrix, files and the command line: refused loudly, in the loaders' own words.

A corrupted file loads different numbers without a word unless someone checks:
here every way a tokenizer, pair file or checkpoint goes bad is refused by its
loader with a one-line message naming the file, and the command line repeats
that message as exactly one line on stderr, "seq2seq-rosetta: error: ...",
with exit code 2 and no traceback.  The backends' refusals are in
test_bad_inputs.py; docs/errors.md lists every message.
"""

from __future__ import annotations

import json
import pickle  # only to WRITE a pickle file and check that every loader refuses it
import zipfile

import pytest

from shared import (
    CheckpointError,
    Tokenizer,
    load_checkpoint,
    read_pairs,
)
from tests.checkpoint_files import join, reseal, small_checkpoint, split
from tests.refusal import checkpoint_refusal, cli_refusal

# ---- files: tokenizers, pair files, checkpoints ----

def _written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real small checkpoint and, next to it, each way such a file goes bad."""
    folder = tmp_path_factory.mktemp("files")
    good = folder / "model.safetensors"
    _, src_tok, _ = small_checkpoint(good)
    raw = good.read_bytes()
    flipped = bytearray(raw)
    flipped[-3] ^= 0x01                                                     # one bit of one weight
    version = b'"version":"1"'
    assert raw.count(version) == 1
    archive = folder / "model.pt"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model/data.pkl", pickle.dumps({"weight": [1.0, 2.0]}))
    src_tok.save(folder / "tokenizer.json")
    data = split(raw)[1]
    nan = _written(folder / "nan.safetensors", raw[: len(raw) - 4] + b"\x00\x00\xc0\x7f")
    reseal(nan)                                             # a NaN in the last weight, resealed
    return {
        "good": good,
        "flipped": _written(folder / "flipped.safetensors", bytes(flipped)),
        "truncated": _written(folder / "truncated.safetensors", raw[: len(raw) // 2]),
        "pickle": _written(folder / "pickle.safetensors", pickle.dumps({"weights": [1.0]})),
        "torch-zip": archive,
        "future": _written(folder / "future.safetensors",
                           raw.replace(version, b'"version":"3"')),
        "empty": _written(folder / "empty.safetensors", b""),
        "missing": folder / "missing.safetensors",
        "deep-header": _written(folder / "deep.safetensors",
                                join(b'{"a": ' + b"[" * 100_000, data)),
        "long-number": _written(folder / "digits.safetensors",
                                join(b'{"a": ' + b"7" * 5000 + b"}", data)),
        "nan": nan,
        "tokenizer": folder / "tokenizer.json",
        "bad-tsv": _written(folder / "bad.tsv", b"abc\tcba\nno tab on this line\n"),
        "long-tsv": _written(folder / "long.tsv", b"abcdefghij\tjihgfedcba\n"),
        "folder": folder,
    }


CHECKPOINT_REFUSALS = {
    "flipped": "checksum mismatch",
    "truncated": "is truncated",
    "pickle": "seq2seq-rosetta never unpickles",
    "torch-zip": "seq2seq-rosetta never unpickles",
    "future": "checkpoint format version 3 is newer than this seq2seq-rosetta reads (2); upgrade",
    "empty": "is empty (0 bytes)",
    "missing": "no such file",
    "deep-header": "header nests JSON deeper than 64 levels",
    "long-number": "header holds a number written with 5000 characters; at most 300 are read",
    "nan": "the weights are not finite: tensor '",
}


@pytest.mark.parametrize("bad", list(CHECKPOINT_REFUSALS))
def test_load_checkpoint_refuses_a_bad_file_and_names_it(files, bad):
    message = checkpoint_refusal(files[bad])
    assert message.startswith(f"checkpoint {files[bad]}: "), message
    assert message.count(str(files[bad])) == 1, message
    assert CHECKPOINT_REFUSALS[bad] in message, message


def test_every_flipped_byte_is_refused(files, tmp_path):
    """A sweep over the length prefix, the header and the data: no flip loads."""
    raw = files["good"].read_bytes()
    path = tmp_path / "flipped.safetensors"
    loaded = []
    for position in range(0, len(raw), 5):
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        path.write_bytes(bytes(flipped))
        try:
            load_checkpoint(path)
        except CheckpointError:
            continue
        loaded.append(position)
    assert not loaded, f"files with a flipped bit at these bytes (of {len(raw)}) loaded: {loaded}"


TOKENIZER_FILES = {
    "truncated": (lambda raw: raw[: len(raw) // 2], "is not valid JSON (corrupt or truncated?)"),
    "empty": (lambda raw: b"", "is not valid JSON (corrupt or truncated?)"),
    "not-utf8": (lambda raw: b"\xff" + raw, "is not UTF-8 text"),
    "a-list": (lambda raw: b"[1, 2]", "expected a JSON object; got list"),
    "future": (lambda raw: raw.replace(b'"version": 1', b'"version": 2'),
               "written by format version 2; this code reads up to version 1"),
    "duplicate-token": (
        lambda raw: json.dumps({**json.loads(raw), "tokens": [*json.loads(raw)["tokens"], "a"]})
        .encode(),
        "token 'a' appears twice",
    ),
}


@pytest.mark.parametrize("bad", list(TOKENIZER_FILES))
def test_a_corrupted_tokenizer_file_is_refused(files, tmp_path, bad):
    corrupt, detail = TOKENIZER_FILES[bad]
    raw = files["tokenizer"].read_bytes()
    assert b'"version": 1' in raw
    path = _written(tmp_path / "tokenizer.json", corrupt(raw))
    with pytest.raises(ValueError) as refused:
        Tokenizer.load(path)
    assert str(refused.value).startswith(f"tokenizer file {path}"), refused.value
    assert detail in str(refused.value)


PAIR_FILES = {
    "no-tab": (b"abc\tcba\nno tab on this line\n",
               "line 2: expected question<TAB>answer, found no tab in 'no tab on this line'"),
    "not-utf8": (b"abc\tcba\n\xff\tx\n", "line 2: not UTF-8"),
    "no-pairs": (b"\n\n", "holds no question/answer pairs"),
}


@pytest.mark.parametrize("bad", list(PAIR_FILES))
def test_a_malformed_pair_file_is_refused_with_its_line(tmp_path, bad):
    data, detail = PAIR_FILES[bad]
    path = _written(tmp_path / "pairs.tsv", data)
    with pytest.raises(ValueError) as refused:
        read_pairs(path)
    assert str(refused.value).startswith(str(path)), refused.value
    assert detail in str(refused.value)


# ---- the command line: one line on stderr, exit code 2 ----

@pytest.mark.parametrize("bad", list(CHECKPOINT_REFUSALS))
@pytest.mark.parametrize("command", ["answer", "compare"])
def test_cli_refuses_a_bad_checkpoint_with_the_loaders_message(files, capsys, command, bad):
    argv = {"answer": ["answer", files[bad], "--backend", "torch", "q"],
            "compare": ["compare", files[bad]]}[command]
    line = cli_refusal(capsys, argv)
    assert line == f"seq2seq-rosetta: error: {checkpoint_refusal(files[bad])}"


CLI_ERRORS = {
    "unknown-task": (["train", "--backend", "torch", "--task", "nope", "--epochs", "1",
                      "--out", "{folder}/out"], "argument --task: invalid choice: 'nope'"),
    "unknown-backend": (["answer", "{good}", "--backend", "jax", "q"],
                        "argument --backend: invalid choice: 'jax'"),
    "bad-flag": (["answer", "{good}", "--backend", "torch", "--bogus", "q"],
                 "unrecognized arguments: --bogus"),
    "not-an-int": (["answer", "{good}", "--backend", "torch", "--beam", "two", "q"],
                   "argument --beam: invalid int value: 'two'"),
    "max-len-zero": (["answer", "{good}", "--backend", "torch", "--max-len", "0", "q"],
                     "argument --max-len: must be an integer >= 1; got 0"),
    "beam-zero": (["answer", "{good}", "--backend", "torch", "--beam", "0", "q"],
                  "argument --beam: must be an integer >= 1; got 0"),
    "seed-too-big": (["train", "--backend", "torch", "--task", "reverse", "--epochs", "1",
                      "--seed", "99999999999999999999", "--out", "{folder}/out"],
                     "argument --seed: must be an integer in [0, 4294967295]; "
                     "got 99999999999999999999"),
    "seed-negative": (["compare", "{good}", "--seed", "-1"],
                      "argument --seed: must be an integer in [0, 4294967295]; got -1"),
    "epochs-zero": (["train", "--backend", "torch", "--task", "reverse", "--epochs", "0",
                     "--out", "{folder}/out"], "argument --epochs: must be an integer >= 1; got 0"),
    # Sizes far past any machine, so that without the estimate the command fails at once.
    "beam-too-big": (["answer", "{good}", "--backend", "torch", "--beam", "100000",
                      "--max-len", "1000000", "q"],
                     "beam search with --beam 100000 and --max-len 1000000 over 1 question "
                     "would need about 1,490 GiB of memory, over the 1 GiB cap; lower --beam or "
                     "--max-len"),
    "compare-too-many": (["compare", "{good}", "--n", "1000000000000"],
                         "compare over 1000000000000 questions with --max-len 20 would need "
                         "about"),
    "out-is-a-file": (["train", "--backend", "torch", "--task", "reverse", "--epochs", "1",
                       "--out", "{good}"], "model.safetensors is a file, not a directory"),
    "out-through-a-file": (["train", "--backend", "torch", "--task", "reverse", "--epochs", "1",
                            "--out", "{good}/out"],
                           "model.safetensors/out cannot be created: "),
    "demo-out-is-a-file": (["demo", "--quick", "--out", "{good}"],
                           "model.safetensors is a file, not a directory"),
    "every-pair-too-long": (["train", "--backend", "torch", "--data", "{long-tsv}", "--epochs",
                             "1", "--max-length", "5", "--out", "{folder}/out"],
                            "no pair fits in --max-length 5 tokens: the one pair has 10 "
                            "tokens in its question or answer; raise --max-length"),
    # --data-parallel: a count, no more than a global batch's rows nor than can start here.
    "data-parallel-zero": (["train", "--backend", "torch", "--task", "reverse", "--epochs", "1",
                            "--data-parallel", "0", "--out", "{folder}/out"],
                           "argument --data-parallel: must be an integer >= 1; got 0"),
    "data-parallel-negative": (["train", "--backend", "keras", "--task", "reverse", "--epochs",
                                "1", "--data-parallel", "-2", "--out", "{folder}/out"],
                               "argument --data-parallel: must be an integer >= 1; got -2"),
    "data-parallel-not-an-int": (["train", "--backend", "torch", "--task", "reverse", "--epochs",
                                  "1", "--data-parallel", "1.5", "--out", "{folder}/out"],
                                 "argument --data-parallel: invalid int value: '1.5'"),
    "data-parallel-over-batch": (["train", "--backend", "torch", "--task", "reverse", "--epochs",
                                  "1", "--batch-size", "2", "--data-parallel", "3", "--out",
                                  "{folder}/out"],
                                 "--data-parallel 3 is more replicas than a global batch has "
                                 "rows (--batch-size has 2)"),
    "data-parallel-over-cores": (["train", "--backend", "keras", "--task", "reverse", "--epochs",
                                  "1", "--batch-size", "4096", "--data-parallel", "4096",
                                  "--out", "{folder}/out"],
                                 "--data-parallel 4096 is more replicas than can start here: "),
    "unknown-command": (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    "no-command": ([], "the following arguments are required: command"),
    "malformed-tsv": (["train", "--backend", "torch", "--data", "{bad-tsv}", "--epochs", "1",
                       "--out", "{folder}/out"],
                      "bad.tsv, line 2: expected question<TAB>answer, found no tab"),
    "missing-tsv": (["train", "--backend", "torch", "--data", "{folder}/nope.tsv", "--epochs",
                     "1", "--out", "{folder}/out"], "nope.tsv: no such file"),
    "checkpoint-is-a-folder": (["answer", "{folder}", "--backend", "torch", "q"],
                               "is a directory, not a checkpoint file"),
}


@pytest.mark.parametrize("bad", list(CLI_ERRORS))
def test_cli_refuses_with_one_line_and_exit_code_2(files, capsys, bad):
    argv, detail = CLI_ERRORS[bad]
    line = cli_refusal(capsys, [arg.format(**files) for arg in argv])
    assert detail in line, line
    assert not (files["folder"] / "out").exists(), "a refused train wrote output"


def test_cli_says_out_of_memory_in_one_line(monkeypatch, capsys, tmp_path):
    """What no estimate foresaw still ends in one line, not a MemoryError traceback."""
    import shared.app.commands.train

    def exhausted(*args):
        raise MemoryError

    monkeypatch.setattr(shared.app.commands.train, "load_task", exhausted)
    line = cli_refusal(capsys, ["train", "--backend", "torch", "--task", "reverse", "--epochs",
                               "1", "--out", tmp_path / "out"])
    assert line.startswith("seq2seq-rosetta: error: out of memory; use smaller sizes"), line
    assert not (tmp_path / "out").exists()
