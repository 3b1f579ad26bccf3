"""Framework-free ground shared by every engine, in floors, each a sub-package.

From the bottom: ``core`` (config, input checks, comparison, seeds), ``files``
(safe reading), ``text`` (tokenizer, pairs and batches, tasks), ``layout`` (the
canonical weight layout and gate tables), ``decoding`` (search), ``reference``
(the float64 NumPy model), ``checkpoint``, ``training``, ``onnx`` (the graphs; the
only floor that imports ``onnx``), ``ladder`` (parity), ``port``, and on top
``app`` (the command line, demo, experiment), which nothing below imports.  Each
floor's docstring says what it may import; tests/test_floors.py holds the rules.
Importing ``shared`` loads no deep-learning framework.  The names below are the
ones a user reaches for first.
"""

from shared.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from shared.core.config import Seq2SeqConfig
from shared.core.runtime import configure_threads, seed_everything
from shared.core.tokens import BOS, EOS, PAD, UNK
from shared.core.version import __version__
from shared.text.data import Batch, batches, encode_questions, make_batch, read_pairs
from shared.text.tasks import TASKS, load_task
from shared.text.tokenizer import Tokenizer

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "TASKS",
    "UNK",
    "Batch",
    "Checkpoint",
    "CheckpointError",
    "Seq2SeqConfig",
    "Tokenizer",
    "__version__",
    "batches",
    "configure_threads",
    "encode_questions",
    "load_checkpoint",
    "load_task",
    "make_batch",
    "read_pairs",
    "save_checkpoint",
    "seed_everything",
]
