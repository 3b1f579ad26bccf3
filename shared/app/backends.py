"""The backends as the commands use them: imported on demand, with set threads.

The command line and the demo import no framework until a command needs one;
then ``load_backend`` imports ``keras_impl``, ``torch_impl`` or ``onnx_impl``, the
inference-only engine on ONNX Runtime (the command line holds TensorFlow's start-up
notices back, see ``shared.app.quiet``),
``model_from_checkpoint`` builds a model holding a checkpoint's weights, and
``threads_for_both`` sets the thread pools for the commands that run both
frameworks (``compare`` and ``demo``).

This module imports no framework.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from types import ModuleType

from shared.checkpoint import Checkpoint
from shared.core.runtime import threads

# The engines that train (the training half of the API), and all that run a trained model.
TRAINERS = ("keras", "torch")
ENGINES = (*TRAINERS, "onnx")

# TensorFlow ran this project's graphs fastest with two ops at once (inter-op 2):
# a training step has independent ops side by side, e.g. the gradients for the
# input and for the weights.  docs/performance.md has the measured demo times with
# this setting and with one thread and one op.
INTER_OP_THREADS = 2


class BackendError(Exception):
    """A backend that is unknown or not installed."""


def load_backend(name: str) -> ModuleType:
    """``keras_impl``, ``torch_impl`` or ``onnx_impl``, imported now.

    Raises:
        BackendError: an unknown name, or the backend's framework is not installed
            (the message says which extra to install).
    """
    if name not in ENGINES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(ENGINES)}")
    try:
        return importlib.import_module(f"{name}_impl")
    except ImportError as err:
        raise BackendError(
            f"the {name} backend is not installed ({err}); pip install 'seq2seq-rosetta[{name}]'"
        ) from err


def model_from_checkpoint(backend: ModuleType, checkpoint: Checkpoint):
    """A new ``backend`` model of the checkpoint's config, holding its weights."""
    model = backend.build_model(checkpoint.config)
    backend.import_weights(model, checkpoint.weights)
    return model


@contextlib.contextmanager
def threads_for_both() -> Iterator[None]:
    """Every core per op and ``INTER_OP_THREADS`` TensorFlow ops at once, for a ``with`` block.

    Call it after ``load_backend`` and before the first model runs: TensorFlow
    fixes its pools at its first op.  torch's count is put back afterwards
    (``shared.core.runtime.threads``).
    """
    with threads(intra_op=os.cpu_count() or 1, inter_op=INTER_OP_THREADS):
        yield
