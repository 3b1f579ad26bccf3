"""Framework-free ground shared by ``keras_impl`` and ``torch_impl``.

Everything that can be written once lives here, in NumPy and the standard
library: the tokenizer, batches, the config, the canonical weight layout and
gate tables (``shared.layout``), the NumPy reference LSTM (``shared.reference``),
input checks, decoding search and output comparison.  Importing it loads no
deep-learning framework.  One exception to "NumPy only": the ONNX file format
(``shared.onnx_graph``, ``shared.onnx_export``) needs the ``onnx`` package, and
nothing here imports those two until something exports or reads ONNX files.
"""

from shared.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from shared.config import Seq2SeqConfig
from shared.data import Batch, batches, encode_questions, make_batch, read_pairs
from shared.runtime import configure_threads, seed_everything
from shared.tasks import TASKS, load_task
from shared.tokenizer import BOS, EOS, PAD, UNK, Tokenizer

__version__ = "0.1.0"

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
