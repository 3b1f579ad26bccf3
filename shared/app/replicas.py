"""``train --data-parallel N``: the checks and the set-up around the engines' replicated training.

The train command calls these at four points, each before any training:

    check_flag(args)              before the data and the backend load: N against
                                  --batch-size and this machine's cores, and Keras on
                                  PyTorch refused where its backend is known already
    prepare(args, backend)        Keras: N devices before the framework's first op, and
                                  Keras on PyTorch refused; then the engine counts its devices
    recorded(args, backend)       the replicas' count and engine, for history.json
    writes_outputs(args, backend) whether this process writes (under an outside
                                  torchrun, global rank 0): the others train without
                                  the epoch hook and write nothing

Every refusal names ``--data-parallel`` in one line; ``--data-parallel 1`` is a plain
run and none of this acts on it.  The engines do the training
(``torch_impl.data_parallel``, ``keras_impl.data_parallel``).

This module imports no framework; it imports an engine's data-parallel module when
the command has loaded that engine.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from shared.app.flags import UsageError
from shared.core.runtime import configure_devices
from shared.training.replicas import (
    ENGINES,
    KERAS_TORCH_REFUSAL,
    check_replicas_fit,
    cores_here,
    outside_torchrun,
)

FLAG = "--data-parallel"


def _fits(replicas: int, batch_size: int, available: int, devices: str) -> None:
    try:
        check_replicas_fit(replicas, batch_size, available, devices, name=FLAG,
                           rows_name="--batch-size")
    except ValueError as refused:
        raise UsageError(str(refused)) from None


def check_flag(args) -> None:
    """Refuse more replicas than --batch-size rows or than this machine's cores, before any work.

    A replica needs a core to run on, a process (torch) or a device's stream (Keras);
    under an outside torchrun the replicas may span machines, and torchrun has counted them.
    """
    if args.data_parallel == 1:
        return
    if args.backend == "keras" and _keras_backend_known() == "torch":
        raise UsageError(f"{FLAG} {args.data_parallel}: {KERAS_TORCH_REFUSAL}")
    cores = cores_here()
    if args.backend == "torch" and outside_torchrun():
        cores = args.data_parallel
    _fits(args.data_parallel, args.batch_size, cores, f"{cores} CPU core{'s' * (cores != 1)}")
    if args.backend == "keras":
        configure_devices(args.data_parallel)  # JAX reads XLA_FLAGS when it first starts


def _keras_backend_known() -> str | None:
    """Keras's backend where it is known without importing Keras: imported, or KERAS_BACKEND.

    Otherwise (keras.json's) ``prepare`` refuses Keras on PyTorch once Keras is loaded.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND")


def data_parallel_module(backend: ModuleType) -> ModuleType:
    """``torch_impl.data_parallel`` or ``keras_impl.data_parallel`` of a loaded backend."""
    return importlib.import_module(f"{backend.__name__}.data_parallel")


def prepare(args, backend: ModuleType) -> None:
    """After the backend loaded, before its first op: its devices, and what it can start."""
    if args.data_parallel == 1:
        return
    if getattr(backend, "BACKEND", None) == "torch":  # Keras on PyTorch
        raise UsageError(f"{FLAG} {args.data_parallel}: {KERAS_TORCH_REFUSAL}")
    if args.backend == "keras":
        configure_devices(args.data_parallel)  # TensorFlow's logical devices, now it is imported
    elif outside_torchrun():
        return  # torchrun started the ranks; the engine checks their count
    _fits(args.data_parallel, args.batch_size, *data_parallel_module(backend).available_replicas())


def recorded(args, backend: ModuleType) -> dict:
    """What history.json says of the replicas: their count and the engine that ran them.

    A replicated run's engine is "torch-ddp", "keras-jax" or "keras-tensorflow"; a plain
    run's is "torch" or "keras-" and its Keras backend.
    """
    keras_backend = getattr(backend, "BACKEND", None)  # keras_impl's; torch_impl has none
    if args.data_parallel > 1:
        return {"data_parallel": args.data_parallel, "engine": ENGINES[keras_backend or "torch"]}
    engine = "torch" if keras_backend is None else f"keras-{keras_backend}"
    return {"data_parallel": 1, "engine": engine}


def writes_outputs(args, backend: ModuleType) -> bool:
    """Whether this process writes the checkpoint and the history: one of the replicas' does."""
    return args.data_parallel == 1 or data_parallel_module(backend).is_writer()
