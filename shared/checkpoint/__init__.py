"""The neutral checkpoint: canonical weights, config and tokenizers in one safetensors file.

``save_checkpoint`` writes it atomically; ``load_checkpoint`` reads it back
strictly or refuses it in one line (docs/checkpoint.md describes the format).

May import: shared.core, shared.files, shared.text, shared.layout; NumPy, safetensors
and the standard library.
"""

from shared.checkpoint.load import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]
