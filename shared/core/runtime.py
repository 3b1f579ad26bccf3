"""Seeds and thread pools for runs that use one framework or both.

Both frameworks in one process share this machine's cores.  Each keeps its own
thread pool, and an idle pool that spins while the other framework works slows
it down, so commands that run both (the parity tests, ``compare``, ``demo``)
set the pools deliberately through ``configure_threads``.

This module imports no framework: each function acts on the frameworks that the
process has already imported, so call it after ``import keras_impl`` or
``import torch_impl`` and before the first model runs.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys

import numpy as np

from shared.core.checks import check_count, check_seed


def _imported(name: str) -> bool:
    return name in sys.modules


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, and Keras/TensorFlow and torch (those imported) with one number.

    Args:
        seed: an integer in [0, 2**32) (``shared.core.checks.SEED_RANGE``).
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    if _imported("torch"):
        sys.modules["torch"].manual_seed(seed)
    if _imported("keras"):
        # Seeds Python, NumPy and the backend (TensorFlow) again; harmless.
        sys.modules["keras"].utils.set_random_seed(seed)


FRAMEWORKS = ("torch", "tensorflow", "onnxruntime")

# The runtimes that take their thread counts per session, when it is built (ONNX Runtime,
# and the on-device interpreters): the counts asked for last, read by each engine as it
# builds one.  None: each runtime's own default (one thread per core).
_SESSION_THREADS: dict[str, int | None] = {"intra_op": None, "inter_op": None}


def session_threads() -> dict[str, int | None]:
    """``{"intra_op": n, "inter_op": m}`` for a runtime session built now (None: its default).

    ``configure_threads(..., frameworks=(..., "onnxruntime"))`` sets them; the
    engines that build sessions (``onnx_impl``) read them, so one call sets the
    threads of every engine in the process.
    """
    return dict(_SESSION_THREADS)


def configure_threads(
    intra_op: int, inter_op: int = 1, *, frameworks: tuple[str, ...] = FRAMEWORKS
) -> None:
    """Give each imported framework ``intra_op`` threads per op and ``inter_op`` op pools.

    TensorFlow accepts this only before it runs its first op; after that its
    pools are fixed and this call leaves them as they are.

    Args:
        intra_op: threads one matrix multiply may use (the machine's cores, or fewer).
        inter_op: independent ops TensorFlow may run at once.  1, the default, runs
            one at a time, as the tests do; a training step has independent ops
            side by side (the gradients for the input and for the weights), and
            2 ran it fastest here, which the commands use
            (``shared.app.backends.threads_for_both``, docs/performance.md).
        frameworks: which of "torch", "tensorflow" and "onnxruntime" to set (all by
            default), for settings that differ per framework, as the benchmarks' do.
            ONNX Runtime fixes its threads per session: the counts apply to the
            sessions built after this call (``session_threads``).
    """
    intra_op, inter_op = check_count(intra_op, "intra_op"), check_count(inter_op, "inter_op")
    if isinstance(frameworks, str) or any(name not in FRAMEWORKS for name in frameworks):
        raise ValueError(f"frameworks must be a tuple of {FRAMEWORKS}; got {frameworks!r}")
    if "onnxruntime" in frameworks:
        _SESSION_THREADS.update(intra_op=intra_op, inter_op=inter_op)
    if "torch" in frameworks and _imported("torch"):
        torch = sys.modules["torch"]
        torch.set_num_threads(intra_op)
        # torch fixes its inter-op pool at its first parallel op; after that, keep it.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(inter_op)
    if "tensorflow" in frameworks and _imported("tensorflow"):
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        except RuntimeError:
            pass  # TensorFlow is already running: its pools cannot change any more


# JAX's count of virtual CPU devices, in XLA_FLAGS, read when JAX first uses a device.
XLA_DEVICE_COUNT = "--xla_force_host_platform_device_count"


def configure_devices(count: int) -> None:
    """``count`` CPU devices for the frameworks that run replicas as devices: JAX and TensorFlow.

    A CPU is one device to both; data-parallel training on a CPU (tests, this
    machine) runs its replicas on virtual devices.  Each framework fixes its
    devices at start-up: JAX reads ``XLA_FLAGS`` when it first uses a device
    (set here in this process's environment), TensorFlow takes logical devices
    until its first op (set here if TensorFlow is imported; call again after
    importing it).  Listing TensorFlow's logical devices would start it, so only
    the physical ones are listed.  Where a framework has already started, its
    devices stay as they are: the engine then counts what it has and refuses
    more replicas than that.

    Args:
        count: devices, >= 1 (1 is what each framework has anyway).
    """
    count = check_count(count, "devices")
    flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
             if not flag.startswith(XLA_DEVICE_COUNT)]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"{XLA_DEVICE_COUNT}={count}"])
    if count > 1 and _imported("tensorflow"):
        tf = sys.modules["tensorflow"]
        cpu = tf.config.list_physical_devices("CPU")[0]
        with contextlib.suppress(RuntimeError):  # TensorFlow already runs: its devices are fixed
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count)


@contextlib.contextmanager
def threads(intra_op: int, inter_op: int = 1):
    """``configure_threads`` for the length of a ``with`` block.

    torch's intra-op count and the session threads are put back afterwards, so a
    command run inside a longer process (the test suite) leaves them as it found them.
    TensorFlow's pools cannot change once it runs: if it already ran, they stay as they were.
    """
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    sessions = session_threads()
    configure_threads(intra_op, inter_op)
    try:
        yield
    finally:
        _SESSION_THREADS.update(sessions)
        if torch is not None:
            torch.set_num_threads(previous)
