"""``save_checkpoint``: one model's canonical weights, config and tokenizers to one file,
and, to continue its training later, its training state.

Everything is checked before a byte is written, and the file is written through
``shared.files.atomic``, so a refused or interrupted save leaves any existing
file as it was; the temporary file a save killed with ``kill -9`` leaves
(``.model.safetensors.PID.XXXX.tmp``) is removed by the next save of the same
file.  ``load_checkpoint`` refuses what this refuses.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

import numpy as np
import safetensors.numpy

from shared.checkpoint.format import (
    MAX_HEADER_BYTES,
    MAX_LAYERS,
    MAX_TENSORS,
    metadata_for,
    vocabulary_mismatch,
)
from shared.checkpoint.training_state import (
    TrainingState,
    check_training_state,
    training_metadata,
    training_tensors,
)
from shared.core.config import Seq2SeqConfig
from shared.files.atomic import write_atomically
from shared.layout import check_weights
from shared.text.tokenizer import Tokenizer


def save_checkpoint(
    path: str | os.PathLike,
    weights: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    training: TrainingState | None = None,
) -> None:
    """Writes one model to a ``.safetensors`` file, atomically.

    Args:
        path: the file to write; an existing file is replaced.  Its directory must exist.
        weights: {canonical name: array}, e.g. a backend's ``export_weights(model)``;
            stored as float32.
        config: the model's sizes, at most ``MAX_LAYERS`` layers.
        src_tokenizer: the source vocabulary, one token per row of ``encoder.embedding``.
        tgt_tokenizer: the target vocabulary, one token per row of ``decoder.embedding``.
        training: where the run stopped and its optimizer's state
            (``shared.checkpoint.training_state``), for ``train --resume``; None: weights only.

    Raises:
        ValueError: the weights or the optimizer's slots do not fit ``config`` (the
            message names the entry), a tokenizer's size differs from its vocabulary
            size in ``config``, or the file would be larger than a loader reads.
    """
    if not isinstance(config, Seq2SeqConfig):
        raise ValueError(f"config must be a Seq2SeqConfig; got {type(config).__name__}")
    for name, tokenizer in (("src_tokenizer", src_tokenizer), ("tgt_tokenizer", tgt_tokenizer)):
        if not isinstance(tokenizer, Tokenizer):
            raise ValueError(f"{name} must be a shared.Tokenizer; got {type(tokenizer).__name__}")
    tensors = check_weights(weights, config)  # float32 copies in canonical order
    mismatch = vocabulary_mismatch(config, src_tokenizer, tgt_tokenizer)
    if mismatch:
        raise ValueError(mismatch)
    if config.num_layers > MAX_LAYERS:
        raise ValueError(
            f"config.num_layers is {config.num_layers}; a checkpoint holds at most {MAX_LAYERS}"
        )
    state = None
    if training is not None:
        training = check_training_state(training, config)
        tensors.update(training_tensors(training))
        state = training_metadata(training)
    # MAX_TENSORS is the tensor count of the largest config a loader accepts with the
    # optimizer of the most slots, so every config of at most MAX_LAYERS layers fits it;
    # a new axis that breaks this fails here.
    assert len(tensors) <= MAX_TENSORS, (len(tensors), MAX_TENSORS)
    metadata = metadata_for(tensors, config, src_tokenizer, tgt_tokenizer, state)
    data = safetensors.numpy.save(tensors, metadata=metadata)
    (header_bytes,) = struct.unpack("<Q", data[:8])
    if header_bytes > MAX_HEADER_BYTES:
        raise ValueError(
            f"the checkpoint header would be {header_bytes} bytes, more than the"
            f" {MAX_HEADER_BYTES} a loader reads; the tokenizers are too large"
        )
    write_atomically(path, data)
