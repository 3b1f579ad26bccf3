"""The neutral checkpoint: canonical weights, config and tokenizers in one safetensors file.

    save_checkpoint(path, weights, config, src_tokenizer, tgt_tokenizer, training=None)
    checkpoint = load_checkpoint(path)   # a Checkpoint, or CheckpointError (a ValueError)

``format`` holds what a file is (name, version, metadata, limits, checksum),
``training_state`` what a file may add to continue a run (the optimizer's slots by
canonical name, where the run stopped), ``save`` writes one atomically, ``load``
reads one back strictly or refuses it in one line; docs/checkpoint.md describes the
bytes and the checks.

May import: shared.core, shared.files, shared.text, shared.layout; NumPy, safetensors
and the standard library.
"""

from shared.checkpoint.load import Checkpoint, CheckpointError, load_checkpoint
from shared.checkpoint.save import save_checkpoint
from shared.checkpoint.training_state import (
    OptimizerSettings,
    OptimizerState,
    TrainingState,
    optimizer_settings,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "OptimizerSettings",
    "OptimizerState",
    "TrainingState",
    "load_checkpoint",
    "optimizer_settings",
    "save_checkpoint",
]
