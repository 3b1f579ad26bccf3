"""Run a named function in a fresh Python process, on another Keras backend, and get its result.

A process holds one setting of each thing a framework fixes at start-up: Keras
its backend when first imported (``KERAS_BACKEND``), TensorFlow its thread pools
and logical devices at its first op, JAX its devices at their first use
(``XLA_FLAGS``).  So whatever must run under another setting -- Keras on JAX
beside a process on TensorFlow, a benchmark once per backend, the test suite's
share on each backend, two replicas on two virtual devices -- runs through this
one helper, which starts ``python -m shared.app.elsewhere`` with that setting,
calls ``module:function(**kwargs)`` there and brings the return value back:

    from shared.app.elsewhere import run_elsewhere
    figures = run_elsewhere("benchmarks.train_step:measure", {"quick": True},
                            keras_backend="jax", threads=1)

Arguments and results cross as JSON with NumPy arrays beside it in an ``.npz``
(never a pickle): dicts, lists, tuples, strings, numbers, booleans, None and
arrays.  ``start_elsewhere`` does the same without waiting, so the caller works on
while the other process runs (tests/run.py runs the suite's share on Keras on JAX
and on PyTorch that way, beside the main run).

This module imports no framework; the child imports what the function needs.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from shared.core.checks import check_count
from shared.core.runtime import XLA_DEVICE_COUNT

KERAS_BACKENDS = ("tensorflow", "jax", "torch")
ROOT = Path(__file__).resolve().parents[2]


class ElsewhereError(RuntimeError):
    """The other process failed; the message holds its last error line."""


def elsewhere_env(keras_backend: str = "tensorflow", threads: int | None = None,
                  devices: int | None = None, cores: int | None = None,
                  extra: Mapping[str, str | None] | None = None) -> dict:
    """The environment of a process on ``keras_backend``, with ``threads``, ``devices``, ``cores``.

    Args:
        keras_backend: "tensorflow", "jax" or "torch".
        threads: threads per op for every framework (OMP, MKL, OpenBLAS, XLA's Eigen
            pool); None leaves each its default.
        devices: CPU devices the process sees: JAX's virtual devices
            (``--xla_force_host_platform_device_count``, read before JAX's first
            device use) and TensorFlow's logical devices (set in the child before
            its first op); None: one, as usual.
        cores: the CPU cores the process may run on, the first ``cores`` of this
            process's (set in the child before the function runs, so the thread
            pools that the frameworks start as they load keep to them; JAX also
            sizes its pool from them); None: all of this process's.
        extra: more variables, set last; a None removes that variable.
    """
    if keras_backend not in KERAS_BACKENDS:
        raise ValueError(f"keras_backend must be one of {', '.join(KERAS_BACKENDS)}; "
                         f"got {keras_backend!r}")
    env = dict(os.environ, KERAS_BACKEND=keras_backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    flags = [flag for flag in env.get("XLA_FLAGS", "").split()
             if not flag.startswith((XLA_DEVICE_COUNT, "--xla_cpu_multi_thread_eigen"))]
    devices = None if devices is None else check_count(devices, "devices")
    if threads is not None:
        threads = check_count(threads, "threads")
        # Read by each framework as it starts: torch (OMP), TensorFlow (TF_NUM_*).
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads),
                   TF_NUM_INTRAOP_THREADS=str(threads),
                   # one op stream per device: replicas on logical devices run side by side
                   TF_NUM_INTEROP_THREADS=str(devices or 1))
        # XLA's CPU client runs Eigen on a thread per core; for one thread, no pool at all.
        if threads == 1:
            flags.append("--xla_cpu_multi_thread_eigen=false")
        env["SEQ2SEQ_THREADS"] = str(threads)
    if devices is not None:
        flags.append(f"{XLA_DEVICE_COUNT}={devices}")
        env["SEQ2SEQ_DEVICES"] = str(devices)
    if cores is not None:
        env["SEQ2SEQ_CORES"] = str(check_count(cores, "cores"))
    env["XLA_FLAGS"] = " ".join(flags)
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass
class Running:
    """A function running in another process; ``result()`` waits for it and returns its value."""

    target: str
    keras_backend: str
    process: subprocess.Popen
    folder: tempfile.TemporaryDirectory
    timeout: float | None
    stderr: Path | None  # the file its stderr goes to (never a pipe that could fill), or None
    _value: Any = field(default=None, init=False)
    _done: bool = field(default=False, init=False)

    def result(self) -> Any:
        """The function's return value; raises ``ElsewhereError`` if it failed or timed out."""
        if self._done:
            return self._value
        try:
            self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ElsewhereError(f"{self.target} on Keras/{self.keras_backend} took more than "
                                 f"{self.timeout:g} s and was stopped") from None
        folder = Path(self.folder.name)
        try:
            if self.process.returncode != 0 or not (folder / "result.json").exists():
                raise ElsewhereError(f"{self.target} on Keras/{self.keras_backend} failed: "
                                     f"{_last_error(folder, self.stderr)}")
            self._value = _read(folder, "result")
            self._done = True
            return self._value
        finally:
            self.folder.cleanup()

    def stop(self) -> None:
        """End the process now (a caller interrupted, or out of time); no result will come."""
        self.process.kill()
        self.process.wait()
        self.folder.cleanup()


def start_elsewhere(target: str, kwargs: Mapping[str, Any] | None = None, *,
                    keras_backend: str = "tensorflow", threads: int | None = None,
                    devices: int | None = None, cores: int | None = None,
                    env: Mapping[str, str | None] | None = None,
                    timeout: float | None = None,
                    output: Path | str | TextIO | None = None) -> Running:
    """Start ``target`` ("package.module:function") in a new process; see ``run_elsewhere``.

    ``output``: where the process's stdout and stderr go: a file (a path), or an open
    stream such as ``sys.stdout`` (they show as it runs); None keeps them quiet
    (stderr's last line still names a crash).
    """
    if not isinstance(target, str) or target.count(":") != 1:
        raise ValueError(f"target must be 'module:function'; got {target!r}")
    folder = tempfile.TemporaryDirectory(prefix="seq2seq-elsewhere-")
    _write(Path(folder.name), "call", {"target": target, "kwargs": dict(kwargs or {})})
    # Files, not pipes: a pipe nobody reads until result() would stall a chatty process.
    stream = output is not None and not isinstance(output, (str, Path))
    stderr = None if stream else Path(output or Path(folder.name) / "stderr.txt")
    with contextlib.nullcontext(output) if stream else open(stderr, "w") as sink:
        if stream:
            sink.flush()  # what this process wrote before stays before the child's output
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.app.elsewhere", folder.name], cwd=ROOT,
            env=elsewhere_env(keras_backend, threads, devices, cores, env),
            stdout=subprocess.DEVNULL if output is None else sink, stderr=sink,
        )
    return Running(target, keras_backend, process, folder, timeout, stderr)


def run_elsewhere(target: str, kwargs: Mapping[str, Any] | None = None, **settings) -> Any:
    """Call ``target(**kwargs)`` in a new process and return its value.

    Args:
        target: "package.module:function", importable from the repository root.
        kwargs: the function's keyword arguments (JSON values and NumPy arrays).
        **settings: ``keras_backend``, ``threads``, ``devices``, ``cores``, ``env``,
            ``timeout`` (see ``elsewhere_env``; ``env`` is its ``extra``; timeout in
            seconds, None: no limit).

    Raises:
        ElsewhereError: the function raised, the process died or it timed out; the
            message names the target, the backend and the last error line.
    """
    return start_elsewhere(target, kwargs, **settings).result()


def _pack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-ready ``value``: arrays replaced by references into ``arrays``."""
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_pack(item, arrays) for item in value]}
    if isinstance(value, list):
        return [_pack(item, arrays) for item in value]
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("only dicts with string keys cross to another process")
        return {key: _pack(item, arrays) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a {type(value).__name__} cannot cross to another process; "
                    "give JSON values and NumPy arrays")


def _unpack(value: Any, arrays) -> Any:
    if isinstance(value, list):
        return [_unpack(item, arrays) for item in value]
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        if set(value) == {"__tuple__"}:
            return tuple(_unpack(item, arrays) for item in value["__tuple__"])
        return {key: _unpack(item, arrays) for key, item in value.items()}
    return value


def _write(folder: Path, name: str, value: Any) -> None:
    arrays: dict[str, np.ndarray] = {}
    packed = _pack(value, arrays)
    np.savez(folder / f"{name}.npz", **arrays)
    (folder / f"{name}.json").write_text(json.dumps(packed))


def _read(folder: Path, name: str) -> Any:
    with np.load(folder / f"{name}.npz", allow_pickle=False) as arrays:
        loaded = {key: arrays[key] for key in arrays.files}
    return _unpack(json.loads((folder / f"{name}.json").read_text()), loaded)


def _last_error(folder: Path, stderr: Path | None) -> str:
    error = folder / "error.txt"
    if error.exists():
        return error.read_text().strip()
    if stderr is None:
        return "see its output"
    text = stderr.read_text(errors="replace") if stderr.exists() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _set_up_child() -> None:
    """Cores, session threads and TensorFlow's devices, before the target runs its first op.

    The frameworks read their thread counts from the environment as they start
    (``elsewhere_env``); ONNX Runtime takes them per session (``configure_threads``).
    """
    cores = os.environ.get("SEQ2SEQ_CORES")
    if cores is not None:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: int(cores)])
    threads = os.environ.get("SEQ2SEQ_THREADS")
    if threads is not None:
        from shared.core.runtime import configure_threads

        configure_threads(int(threads), 1, frameworks=("onnxruntime",))
    devices = int(os.environ.get("SEQ2SEQ_DEVICES", "1"))
    if os.environ.get("KERAS_BACKEND") == "tensorflow" and devices > 1:
        import tensorflow  # noqa: F401 (configure_devices sets the devices of what is imported)

        from shared.core.runtime import configure_devices

        configure_devices(devices)


def _child(folder: str) -> int:
    """Inside the other process: run the call in ``folder``, write its result or its error."""
    where = Path(folder)
    try:
        call = _read(where, "call")
        module, function = call["target"].split(":")
        _set_up_child()
        value = getattr(importlib.import_module(module), function)(**call["kwargs"])
        _write(where, "result", value)
        return 0
    except BaseException as err:  # reported to the parent in one line, whatever it was
        (where / "error.txt").write_text(f"{type(err).__name__}: {' '.join(str(err).split())}")
        return 1


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
