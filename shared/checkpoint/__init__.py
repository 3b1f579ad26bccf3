"""The neutral checkpoint: canonical weights, config and tokenizers in one safetensors file.

    save_checkpoint(path, weights, config, src_tokenizer, tgt_tokenizer)
    checkpoint = load_checkpoint(path)   # a Checkpoint, or CheckpointError (a ValueError)

``format`` holds what a file is (name, version, metadata, limits, checksum),
``save`` writes one atomically, ``load`` reads one back strictly or refuses it in
one line; docs/checkpoint.md describes the bytes and the checks.

May import: shared.core, shared.files, shared.text, shared.layout; NumPy, safetensors
and the standard library.
"""

from shared.checkpoint.load import Checkpoint, CheckpointError, load_checkpoint
from shared.checkpoint.save import save_checkpoint

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]
