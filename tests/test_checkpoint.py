"""Checkpoint files: exact round trips, a documented layout and digest, loud refusals, atomic saves.

NumPy only: the cross-framework round trip (save from Keras, load into PyTorch)
belongs to the backends' tests.
"""

import dataclasses
import hashlib
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from shared.checkpoint import (
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from shared.checkpoint.format import FORMAT, VERSION, WEIGHTS_ONLY_VERSION
from shared.layout import canonical_shapes, random_weights
from shared.text.tokenizer import Tokenizer
from tests.checkpoint_files import (
    edit_metadata,
    join,
    make_parts,
    read_header,
    reseal,
    rewrite_header,
    split,
)
from tests.refusal import checkpoint_refusal

FIXED_PHRASE = (
    "this looks like a pickle/PyTorch .pt file; seq2seq-rosetta never unpickles,"
    " re-save it with save_checkpoint"
)


@pytest.fixture
def parts():
    return make_parts()


@pytest.fixture
def saved(tmp_path, parts):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, *parts)
    return path


def test_round_trip_is_bit_exact(saved, parts):
    weights, config, src, tgt = parts
    loaded = load_checkpoint(saved)
    assert isinstance(loaded, Checkpoint)
    assert list(loaded.weights) == list(canonical_shapes(config))
    for name, value in weights.items():
        got = loaded.weights[name]
        assert got.dtype == np.float32 and got.shape == value.shape, name
        assert got.tobytes() == value.tobytes(), f"{name} changed on the round trip"
    assert loaded.config == config and loaded.config.dropout == 0.1
    assert loaded.src_tokenizer == src and loaded.tgt_tokenizer == tgt
    assert loaded.tgt_tokenizer.encode("naïve cat au lait") == tgt.encode("naïve cat au lait")
    assert loaded.src_tokenizer.encode("dcbaz") == src.encode("dcbaz")


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_an_attending_model_round_trips_with_its_attention(tmp_path, attention):
    weights, config, src, tgt = make_parts(attention=attention, cell="gru")
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, weights, config, src, tgt)
    loaded = load_checkpoint(path)
    assert loaded.config.attention == attention and loaded.config == config
    assert [n for n in loaded.weights if n.startswith("decoder.attention.")] == [
        n for n in canonical_shapes(config) if n.startswith("decoder.attention.")]
    for name, value in weights.items():
        assert loaded.weights[name].tobytes() == value.tobytes(), f"{name} changed"


def test_attention_weights_without_an_attending_config_are_refused(tmp_path):
    weights, config, src, tgt = make_parts(attention="luong")
    plain = dataclasses.replace(config, attention="none")
    with pytest.raises(ValueError, match=r"2 unexpected: 'decoder.attention.W_a', "
                                         r"'decoder.attention.W_c'.*attention='luong'"):
        save_checkpoint(tmp_path / "model.safetensors", weights, plain, src, tgt)


def test_load_takes_str_or_path_and_the_result_is_frozen(saved):
    loaded = load_checkpoint(str(saved))
    assert loaded.config == load_checkpoint(saved).config
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.config = None


def test_file_is_plain_safetensors_with_the_documented_metadata(saved, parts):
    weights, config, src, tgt = parts
    header, start = read_header(saved)
    metadata = header.pop("__metadata__")
    assert set(metadata) == {
        "format",
        "version",
        "config",
        "src_tokenizer",
        "tgt_tokenizer",
        "sha256",
    }
    assert metadata["format"] == "seq2seq-rosetta/checkpoint" and metadata["version"] == "1"
    assert json.loads(metadata["config"]) == config.to_dict()
    assert json.loads(metadata["src_tokenizer"]) == src.to_dict()
    assert json.loads(metadata["tgt_tokenizer"]) == tgt.to_dict()
    data = saved.read_bytes()[start:]
    assert set(header) == set(weights)
    for name, entry in header.items():
        assert entry["dtype"] == "F32" and tuple(entry["shape"]) == weights[name].shape, name
        begin, end = entry["data_offsets"]
        assert data[begin:end] == weights[name].astype("<f4").tobytes(), name


def test_checksum_is_the_documented_digest(saved, parts):
    weights = parts[0]
    sha = hashlib.sha256()
    for name in sorted(weights):
        shape = ",".join(str(n) for n in weights[name].shape)
        sha.update(f'["{name}","F32",[{shape}]]\n'.encode())
        sha.update(weights[name].astype("<f4").tobytes())
    header, _ = read_header(saved)
    metadata = header["__metadata__"]
    for key in sorted(set(metadata) - {"sha256"}):
        sha.update((json.dumps(["__metadata__", key, metadata[key]], separators=(",", ":"))
                    + "\n").encode())
    assert metadata["sha256"] == sha.hexdigest()


def test_every_tensor_is_covered_by_the_checksum(saved):
    header, start = read_header(saved)
    original = saved.read_bytes()
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        raw = bytearray(original)
        raw[start + entry["data_offsets"][0]] ^= 0x01  # a tiny, finite change to one float
        saved.write_bytes(bytes(raw))
        message = checkpoint_refusal(saved)
        assert "checksum mismatch: the tensor data or metadata is corrupted" in message, name


def test_any_truncation_is_refused(tmp_path):
    path = tmp_path / "small.safetensors"
    save_checkpoint(path, *make_parts(num_layers=1, bidirectional=False))
    raw = path.read_bytes()
    _, start = read_header(path)
    cuts = {*range(17), *range(0, len(raw), 37), *range(start - 8, start + 8), len(raw) - 1}
    for cut in sorted(cuts):
        path.write_bytes(raw[:cut])
        message = checkpoint_refusal(path)
        assert ("truncated" in message) or (cut == 0 and "is empty" in message), message


def flip_data_byte(path):
    _, start = read_header(path)
    raw = bytearray(path.read_bytes())
    raw[(start + len(raw)) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def bump_hidden_size(path):
    config = json.loads(read_header(path)[0]["__metadata__"]["config"])
    edit_metadata(path, config=json.dumps({**config, "hidden_size": 3}))
    reseal(path)


def drop_last_src_token(path):
    tokenizer = json.loads(read_header(path)[0]["__metadata__"]["src_tokenizer"])
    tokenizer["tokens"].pop()
    edit_metadata(path, src_tokenizer=json.dumps(tokenizer))
    reseal(path)


def rename_a_token(path):
    """A token's spelling changed: the file still parses, only the checksum can tell."""
    tokenizer = json.loads(read_header(path)[0]["__metadata__"]["tgt_tokenizer"])
    tokenizer["tokens"][-1] = tokenizer["tokens"][-1] + "x"
    edit_metadata(path, tgt_tokenizer=json.dumps(tokenizer))


def repeat_a_tgt_token(path):
    tokenizer = json.loads(read_header(path)[0]["__metadata__"]["tgt_tokenizer"])
    tokenizer["tokens"][-1] = tokenizer["tokens"][-2]
    edit_metadata(path, tgt_tokenizer=json.dumps(tokenizer))


def set_dtype(path, name, dtype):
    def edit(header):
        header[name]["dtype"] = dtype

    rewrite_header(path, edit)


def replace_header(path, text):
    path.write_bytes(join(text, split(path.read_bytes())[1]))


CORRUPTIONS = {
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "garbage": (
        lambda p: p.write_bytes(np.random.default_rng(5).bytes(4096)),
        "is not a safetensors checkpoint",
    ),
    "text": (lambda p: p.write_text("not a checkpoint\n"), "is not a safetensors checkpoint"),
    "header not JSON": (
        lambda p: replace_header(p, b"{this is not json}      "),
        "header is not valid JSON",
    ),
    "plain safetensors": (
        lambda p: rewrite_header(p, lambda h: h.pop("__metadata__")),
        "is a safetensors file but not a seq2seq-rosetta checkpoint",
    ),
    "other format": (
        lambda p: edit_metadata(p, format="pt"),
        "its format is 'pt', expected 'seq2seq-rosetta/checkpoint'",
    ),
    "unknown version": (
        lambda p: edit_metadata(p, version="one"),
        "unknown checkpoint format version 'one'",
    ),
    "missing key": (lambda p: edit_metadata(p, sha256=None), "lacks keys ['sha256']"),
    "unknown key": (lambda p: edit_metadata(p, notes="hi"), "unknown keys ['notes']"),
    "float16 tensor": (
        lambda p: set_dtype(p, "decoder.output.b", "F16"),
        "tensor 'decoder.output.b' has dtype 'F16'; checkpoints hold float32",
    ),
    "checksum": (flip_data_byte, "checksum mismatch: the tensor data or metadata is corrupted"),
    "trailing bytes": (
        lambda p: p.write_bytes(p.read_bytes() + b"\0" * 5),
        "has 5 unexpected bytes after the tensor data",
    ),
    "truncated data": (
        lambda p: p.write_bytes(p.read_bytes()[:-10]),
        "is truncated: the header describes",
    ),
    "truncated header": (lambda p: p.write_bytes(p.read_bytes()[:100]), "is truncated"),
    "config not JSON": (
        lambda p: edit_metadata(p, config='{"src_vocab_size": 8,'),
        "metadata 'config' is not valid JSON",
    ),
    "config invalid": (
        lambda p: edit_metadata(
            p,
            config=json.dumps(
                {
                    "src_vocab_size": 8,
                    "tgt_vocab_size": 10,
                    "embedding_dim": 3,
                    "hidden_size": 2,
                    "num_layers": 0,
                }
            ),
        ),
        "not a valid Seq2SeqConfig: Seq2SeqConfig.num_layers must be >= 1",
    ),
    "config does not fit tensors": (
        bump_hidden_size,
        "the tensors do not match the stored config: encoder.layers.0.forward.i.W_ih has shape"
        " (2, 3); expected (3, 3)",
    ),
    "tokenizer not JSON": (
        lambda p: edit_metadata(p, tgt_tokenizer="["),
        "metadata 'tgt_tokenizer' is not valid JSON",
    ),
    "tokenizer invalid": (
        repeat_a_tgt_token,
        "metadata 'tgt_tokenizer' is not a valid tokenizer",
    ),
    "renamed token": (rename_a_token, "checksum mismatch: the tensor data or metadata"),
    "tokenizer size": (
        drop_last_src_token,
        "src_tokenizer has 7 tokens but encoder.embedding has 8 rows (config.src_vocab_size)",
    ),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_load_refuses_a_bad_file_and_says_why(saved, name):
    corrupt, expected = CORRUPTIONS[name]
    corrupt(saved)
    message = checkpoint_refusal(saved)
    assert expected in message, message


def test_a_newer_version_asks_for_an_upgrade(saved):
    edit_metadata(saved, version=str(VERSION + 1))
    assert checkpoint_refusal(saved) == (
        f"checkpoint {saved}: checkpoint format version {VERSION + 1} is newer than this"
        f" seq2seq-rosetta reads ({VERSION}); upgrade"
    )


def test_missing_file_and_directory_are_refused(tmp_path):
    assert checkpoint_refusal(tmp_path / "nowhere.safetensors").endswith(": no such file")
    assert "is a directory" in checkpoint_refusal(tmp_path)


class _Payload:
    """Unpickling this creates a directory: proof that a pickle runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_pickle_is_refused_without_being_unpickled(tmp_path):
    marker = tmp_path / "pickle-ran"
    payload = pickle.dumps({"weights": _Payload(str(marker))})
    pickle.loads(payload)  # the payload is live: unpickling it runs os.mkdir
    assert marker.is_dir()
    marker.rmdir()
    path = tmp_path / "model.pt"
    path.write_bytes(payload)
    assert payload[:1] == b"\x80"
    assert FIXED_PHRASE in checkpoint_refusal(path)
    assert not marker.exists()


def test_a_torch_style_zip_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
        archive.writestr("model/data.pkl", pickle.dumps({"weights": [1.0, 2.0]}))
        archive.writestr("model/version", "3\n")
    message = checkpoint_refusal(path)
    assert FIXED_PHRASE in message and "zip archive" in message


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load_checkpoint unpickled something")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    assert load_checkpoint(saved).weights


def test_save_refuses_tokenizers_that_do_not_fit(tmp_path, parts):
    weights, config, src, tgt = parts
    path = tmp_path / "model.safetensors"
    with pytest.raises(
        ValueError,
        match=r"src_tokenizer has 10 tokens but encoder.embedding has"
        r" 8 rows \(config.src_vocab_size\)",
    ):
        save_checkpoint(path, weights, config, tgt, src)
    small = Tokenizer.build(["the"], level="word")
    with pytest.raises(
        ValueError,
        match=r"tgt_tokenizer has 5 tokens but decoder.embedding has"
        r" 10 rows",
    ):
        save_checkpoint(path, weights, config, src, small)
    with pytest.raises(ValueError, match=r"tgt_tokenizer must be a shared.Tokenizer; got list"):
        save_checkpoint(path, weights, config, src, list(tgt.tokens))
    with pytest.raises(ValueError, match=r"config must be a Seq2SeqConfig; got dict"):
        save_checkpoint(path, weights, config.to_dict(), src, tgt)
    assert os.listdir(tmp_path) == []


def test_save_refuses_weights_that_do_not_fit_the_config(tmp_path, parts):
    weights, config, src, tgt = parts
    path = tmp_path / "model.safetensors"
    missing = {k: v for k, v in weights.items() if k != "decoder.output.b"}
    with pytest.raises(ValueError, match=r"1 missing: decoder.output.b"):
        save_checkpoint(path, missing, config, src, tgt)
    with pytest.raises(ValueError, match=r"decoder.output.W has shape \(4, 10\); expected"):
        save_checkpoint(
            path, {**weights, "decoder.output.W": weights["decoder.output.W"].T}, config, src, tgt
        )
    broken = {**weights, "encoder.embedding": weights["encoder.embedding"].copy()}
    broken["encoder.embedding"][2, 1] = np.nan
    with pytest.raises(ValueError, match=r"encoder.embedding holds NaN/inf \(1 of 24 values\)"):
        save_checkpoint(path, broken, config, src, tgt)
    assert os.listdir(tmp_path) == []


def test_save_replaces_an_existing_file(saved, parts):
    _, config, src, tgt = parts
    newer = random_weights(config, seed=4)
    save_checkpoint(saved, newer, config, src, tgt)
    loaded = load_checkpoint(saved)
    assert all(loaded.weights[k].tobytes() == newer[k].tobytes() for k in newer)
    assert os.listdir(saved.parent) == [saved.name]


def test_an_interrupted_save_keeps_the_old_file(saved, parts, monkeypatch):
    """Saving goes through shared.files.atomic (tests/test_files.py interrupts it every way)."""
    weights, config, src, tgt = parts

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(saved, random_weights(config, seed=4), config, src, tgt)
    assert os.listdir(saved.parent) == [saved.name]  # no temporary file left behind
    loaded = load_checkpoint(saved)
    assert all(loaded.weights[k].tobytes() == weights[k].tobytes() for k in weights)


def test_format_constants_match_the_file(saved):
    metadata = read_header(saved)[0]["__metadata__"]
    # A checkpoint of weights only is still version 1 (version 2 adds a training state).
    assert (metadata["format"], metadata["version"]) == (FORMAT, str(WEIGHTS_ONLY_VERSION))
