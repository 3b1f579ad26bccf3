"""Building, reading and rewriting checkpoint files by hand, for the checkpoint tests.

Every helper works on the bytes as docs/checkpoint.md describes them (8-byte
little-endian header length N, N bytes of JSON header, then the data section),
not through the loader, so a test can make a file the loader has never seen:
re-padded, resealed after a change, or broken on purpose.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from shared.checkpoint import OptimizerState, TrainingState, optimizer_settings
from shared.checkpoint.format import digest
from shared.checkpoint.training_state import frozen_weights
from shared.core.config import Seq2SeqConfig
from shared.layout import random_weights
from shared.text.tokenizer import Tokenizer


def small_checkpoint(path) -> tuple:
    """A real small checkpoint at ``path`` (the reverse task's vocabularies, E = 3, H = 4,
    random weights); returns (config, src_tok, tgt_tok)."""
    from shared.checkpoint import save_checkpoint
    from shared.text.data import build_tokenizers
    from shared.text.tasks import load_task

    src_tok, tgt_tok = build_tokenizers(load_task("reverse", 16, seed=0))
    config = Seq2SeqConfig(len(src_tok), len(tgt_tok), embedding_dim=3, hidden_size=4)
    save_checkpoint(path, random_weights(config, seed=1), config, src_tok, tgt_tok)
    return config, src_tok, tgt_tok


def make_parts(num_layers=2, bidirectional=True, seed=3, cell="lstm", extra_word="",
               attention="none"):
    """(weights, config, src_tokenizer, tgt_tokenizer) with V_src = 8 != V_tgt = 10 (or 11).

    The target vocabulary holds non-ASCII words, to prove the JSON in the header
    keeps them; dropout 0.1 proves a float field survives.  ``extra_word`` adds one
    target word, which makes the header longer by about its length.
    """
    src = Tokenizer.build(["abc", "cab", "bad"])
    tgt = Tokenizer.build(["the cat", "café au lait", "naïve café", extra_word], level="word")
    config = Seq2SeqConfig(
        src_vocab_size=len(src),
        tgt_vocab_size=len(tgt),
        embedding_dim=3,
        hidden_size=2,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=0.1,
        cell=cell,
        attention=attention,
    )
    return random_weights(config, seed=seed), config, src, tgt


def adam_state(config: Seq2SeqConfig, seed=4, epochs_done=3, step=17) -> TrainingState:
    """A training state of Adam with random slots: m of either sign, v >= 0, and zeros where
    neither engine trains (an LSTM's b_hh)."""
    rng = np.random.default_rng(seed)
    slots = {"m": random_weights(config, seed=seed), "v": {}}
    for name, value in slots["m"].items():
        slots["v"][name] = (rng.random(value.shape) * 1e-3).astype(np.float32)
    for name in frozen_weights(config):
        slots["m"][name][...] = 0
        slots["v"][name][...] = 0
    settings = optimizer_settings("adam", lr=0.01, clip_norm=1.5)
    return TrainingState(epochs_done, seed=7, batch_size=16,
                         optimizer=OptimizerState(settings, step, slots))


def split(raw: bytes) -> tuple[bytes, bytes]:
    """(header JSON bytes, data section) of a well-formed file."""
    (size,) = struct.unpack("<Q", raw[:8])
    return raw[8 : 8 + size], raw[8 + size :]


def join(header: bytes, data: bytes) -> bytes:
    """A file of this header (taken as it is, padding and all) and data section."""
    return struct.pack("<Q", len(header)) + header + data


def read_header(path):
    """(header dict, offset of the data section), parsed by hand as the docstring describes."""
    header, _ = split(path.read_bytes())
    return json.loads(header), 8 + len(header)


def rewrite_header(path, edit):
    """Applies ``edit(header)`` and writes the file back with a new, space-padded header."""
    header, data = split(path.read_bytes())
    header = json.loads(header)
    edit(header)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.write_bytes(join(text, data))


def edit_metadata(path, **changes):
    """Sets metadata keys (None deletes one) and rewrites the file."""

    def edit(header):
        for key, value in changes.items():
            if value is None:
                del header["__metadata__"][key]
            else:
                header["__metadata__"][key] = value

    rewrite_header(path, edit)


def edit_config(path, **changes):
    """Changes fields of the stored config (None deletes one), then reseals the file."""
    config = json.loads(read_header(path)[0]["__metadata__"]["config"])
    config.update(changes)
    config = {key: value for key, value in config.items() if value is not None}
    edit_metadata(path, config=json.dumps(config))
    reseal(path)


def tensors_of(path) -> dict[str, np.ndarray]:
    """The tensors as the header describes them, read by hand."""
    header, start = read_header(path)
    raw = path.read_bytes()
    return {
        name: np.frombuffer(raw[start + e["data_offsets"][0] : start + e["data_offsets"][1]],
                            dtype="<f4").reshape(e["shape"])
        for name, e in header.items() if name != "__metadata__"
    }


def reseal(path):
    """Recomputes the checksum the way the loader checks it, as a writer with a bug would.

    A flipped bit is caught by the checksum; a resealed file reaches the checks after it.
    """
    edit_metadata(path, sha256=digest(tensors_of(path), read_header(path)[0]["__metadata__"]))


def repad(raw: bytes, low_byte: int) -> bytes:
    """The same file with spaces after the header's JSON, so that N % 256 == low_byte.

    safetensors allows trailing whitespace in the header; the data offsets count
    from the end of the header, so nothing else changes.
    """
    header, data = split(raw)
    text = header.rstrip(b" ")
    text += b" " * ((low_byte - len(text)) % 256)
    return join(text, data)
