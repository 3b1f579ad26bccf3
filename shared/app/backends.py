"""The backends as the commands use them: imported on demand, with set threads.

The command line and the demo import no framework until a command needs one;
then ``load_backend`` imports ``keras_impl``, ``torch_impl`` or ``onnx_impl``, the
inference-only engine on ONNX Runtime, or an on-device one, ``litert_impl`` or
``executorch_impl`` (the command line holds TensorFlow's start-up notices back, see
``shared.app.quiet``), ``model_from_checkpoint`` builds a model holding a checkpoint's
weights, ``exported_model`` loads an on-device engine's folder of that checkpoint, and
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

from shared.app import flags
from shared.checkpoint import Checkpoint
from shared.checkpoint.load import stored_checksum
from shared.core.runtime import threads

# The engines that train (the training half of the API), and all that run a trained model.
TRAINERS = ("keras", "torch")
# The engines that run programs exported for a device (`seq2seq-rosetta export --format`):
# they load the exported folder, not the checkpoint.
ON_DEVICE = ("litert", "executorch")
ENGINES = (*TRAINERS, "onnx", *ON_DEVICE)

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


def load_exported(runtime: str, folder: str | os.PathLike):
    """``litert_impl.load_model(folder)`` or ``executorch_impl.load_model(folder)``.

    Each engine's loader is called by its module's name, so that the safety scan
    (tests/test_safety_scan.py) can tell it from Keras's ``load_model``, which runs
    Python from a file.

    Raises:
        BackendError: an unknown runtime, or its engine is not installed.
    """
    if runtime not in ON_DEVICE:
        raise BackendError(f"unknown on-device runtime {runtime!r}; choose one of "
                           f"{', '.join(ON_DEVICE)}")
    load_backend(runtime)  # a BackendError that names the extra, if it is not installed
    if runtime == "litert":
        import litert_impl

        return litert_impl.load_model(folder)
    import executorch_impl

    return executorch_impl.load_model(folder)


def exported_model(backend: ModuleType, folder: str | os.PathLike,
                   checkpoint_path: str | os.PathLike):
    """An on-device ``backend``'s model of ``folder``, which must come from this checkpoint.

    ``load_model`` checks the folder (ours, unchanged); its metadata names the checksum
    of the checkpoint it was exported from, which must be the one given: answers and
    parity tables would otherwise mix two models.

    Raises:
        BackendError: the folder was exported from another checkpoint.
    """
    model = load_exported(backend.NAME, folder)
    if model.checkpoint_sha256 != stored_checksum(checkpoint_path):
        raise BackendError(
            f"{folder} was not exported from {checkpoint_path} (another checkpoint's checksum "
            f"in its metadata); export it again: seq2seq-rosetta export {checkpoint_path} "
            f"--format {backend.NAME} --out {folder}")
    return model


def add_exported_flag(parser) -> None:
    """``--exported DIR``, the folder an on-device engine runs (``command_model``)."""
    parser.add_argument("--exported", metavar="DIR",
                        help=f"with --backend {' or '.join(ON_DEVICE)}: the folder `export "
                             "--format` wrote from this checkpoint")


def command_model(name: str, checkpoint_path: str | os.PathLike, checkpoint: Checkpoint,
                  exported: str | os.PathLike | None) -> tuple[ModuleType, object]:
    """(backend, model) for a command's ``--backend name [--exported DIR]``.

    An on-device engine runs the folder ``--exported`` names, which must come from this
    checkpoint (``exported_model``); any other engine builds the checkpoint's model.

    Raises:
        flags.UsageError: ``--exported`` missing for an on-device engine, or given to another.
        BackendError: the engine is not installed, or the folder is another checkpoint's.
    """
    if (name in ON_DEVICE) != (exported is not None):
        raise flags.UsageError(
            f"--backend {name} runs the programs `seq2seq-rosetta export {checkpoint_path} "
            f"--format {name} --out DIR` wrote: give --exported DIR" if exported is None else
            f"--exported is for --backend {' or '.join(ON_DEVICE)}; {name} runs the "
            "checkpoint itself")
    backend = load_backend(name)
    if exported is not None:
        return backend, exported_model(backend, exported, checkpoint_path)
    return backend, model_from_checkpoint(backend, checkpoint)


@contextlib.contextmanager
def threads_for_both() -> Iterator[None]:
    """Every core per op and ``INTER_OP_THREADS`` TensorFlow ops at once, for a ``with`` block.

    Call it after ``load_backend`` and before the first model runs: TensorFlow
    fixes its pools at its first op.  torch's count is put back afterwards
    (``shared.core.runtime.threads``).
    """
    with threads(intra_op=os.cpu_count() or 1, inter_op=INTER_OP_THREADS):
        yield
