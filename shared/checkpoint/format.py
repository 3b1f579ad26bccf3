"""The checkpoint format, written once: what ``save`` writes and ``load`` holds it to.

The name and version a file carries, its metadata keys, the limits a loader
keeps to, the checksum, and the rule that each tokenizer fits its embedding.
docs/checkpoint.md describes the bytes.  ``MAX_TENSORS`` is derived from the largest
config a loader accepts and the optimizer with the most slots, so a new cell, attention
kind or optimizer cannot outgrow it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from shared.checkpoint.training_state import MAX_SLOTS
from shared.core.config import ATTENTIONS, Seq2SeqConfig
from shared.layout import CELL_GATES, canonical_shapes
from shared.layout.attention import attention_shapes
from shared.text.tokenizer import Tokenizer

# What a checkpoint calls itself.  Bump the version when the layout changes; older
# code then refuses newer files instead of misreading them.  Version 2 added the
# training state (the optimizer's slots and where the run stopped); a file without
# one is still written as version 1, which every reader of version 1 reads.
FORMAT = "seq2seq-rosetta/checkpoint"
VERSION = 2
WEIGHTS_ONLY_VERSION = 1
# The metadata a checkpoint holds, every key a JSON text or a plain string, no other key.
METADATA_KEYS = ("format", "version", "config", "src_tokenizer", "tgt_tokenizer", "sha256")
# ... and a checkpoint with a training state (version 2), which adds "training".
TRAINING_METADATA_KEYS = (*METADATA_KEYS[:-1], "training", "sha256")

# The safetensors library's own limit on the header (tests/test_checkpoint_hostile.py
# holds the two equal); ours holds the tokenizers, so a word vocabulary of a million
# tokens still fits.
MAX_HEADER_BYTES = 100_000_000
# A stored config may ask for this many layers at most, so that a hostile header cannot
# make the loader list billions of canonical names; the tensors follow from it.
MAX_LAYERS = 64


def _largest_config() -> Seq2SeqConfig:
    """The config with the most tensors a loader accepts.

    MAX_LAYERS layers, a bidirectional encoder (two sets of encoder layers), the
    cell with the most gates and the attention kind with the most weights.  The
    sizes are the smallest allowed: they change shapes, never the count of tensors.
    """
    cell = max(CELL_GATES, key=lambda name: len(CELL_GATES[name]))
    attention = max(
        ATTENTIONS,
        key=lambda name: len(attention_shapes(Seq2SeqConfig(4, 4, 1, 1, attention=name))),
    )
    return Seq2SeqConfig(4, 4, 1, 1, num_layers=MAX_LAYERS, bidirectional=True, cell=cell,
                         attention=attention)


# A header may describe this many tensors at most: every weight of the largest config,
# and one tensor per weight for each slot of the optimizer with the most (Adam's m and v).
MAX_TENSORS = len(canonical_shapes(_largest_config())) * (1 + MAX_SLOTS)


def metadata_for(
    tensors: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    training: str | None = None,
) -> dict[str, str]:
    """The header's ``__metadata__`` for a model, its checksum included (METADATA_KEYS).

    ``training`` is the training state's JSON text (``training_metadata``), or None for
    a checkpoint of weights only, which stays version 1 (TRAINING_METADATA_KEYS else).
    """
    # safetensors metadata maps strings to strings: the config and the tokenizers are
    # JSON texts inside the JSON header.
    metadata = {
        "format": FORMAT,
        "version": str(WEIGHTS_ONLY_VERSION if training is None else VERSION),
        "config": json.dumps(config.to_dict()),
        "src_tokenizer": json.dumps(src_tokenizer.to_dict()),
        "tgt_tokenizer": json.dumps(tgt_tokenizer.to_dict()),
    }
    if training is not None:
        metadata["training"] = training
    metadata["sha256"] = digest(tensors, metadata)
    # What the loader asks for.
    assert tuple(metadata) == metadata_keys(metadata["version"]), tuple(metadata)
    return metadata


def metadata_keys(version: str) -> tuple[str, ...]:
    """The metadata keys a checkpoint of this version (a known one) holds, in order."""
    return METADATA_KEYS if version == str(WEIGHTS_ONLY_VERSION) else TRAINING_METADATA_KEYS


def digest(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """The checksum: SHA-256 over the tensors by sorted name, then the other metadata.

    Each tensor adds the line ``["name","F32",[shape]]`` and its little-endian C-order
    bytes; each metadata key but "sha256" adds ``["__metadata__","key","value"]``
    (docs/checkpoint.md says why it is taken over the tensors, not the file's bytes).
    """
    sha = hashlib.sha256()
    for name in sorted(tensors):
        assert tensors[name].dtype == np.float32, name  # save and load pass float32 only
        value = np.ascontiguousarray(tensors[name], dtype="<f4")  # little-endian, C order
        line = json.dumps([name, "F32", list(value.shape)], separators=(",", ":")) + "\n"
        sha.update(line.encode("utf-8"))
        sha.update(value.tobytes())
    for key in sorted(set(metadata) - {"sha256"}):
        line = json.dumps(["__metadata__", key, metadata[key]], separators=(",", ":")) + "\n"
        sha.update(line.encode("utf-8"))
    return sha.hexdigest()


def vocabulary_mismatch(
    config: Seq2SeqConfig, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer
) -> str | None:
    """Why the tokenizers do not fit the config's embeddings, or None if they do."""
    sides = (
        ("src_tokenizer", src_tokenizer, "encoder.embedding", "src_vocab_size"),
        ("tgt_tokenizer", tgt_tokenizer, "decoder.embedding", "tgt_vocab_size"),
    )
    for name, tokenizer, embedding, field in sides:
        size = getattr(config, field)
        if len(tokenizer) != size:
            # Token id k reads row k of the embedding, so the two sizes must agree exactly.
            return (
                f"{name} has {len(tokenizer)} tokens but {embedding} has {size} rows"
                f" (config.{field}); each token id needs exactly one embedding row"
            )
    return None
