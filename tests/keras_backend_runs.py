"""Run a share of the suite under Keras on JAX and on PyTorch, beside the main test process.

Keras fixes its backend when it is first imported, so Keras on another backend
needs another process.  ``start`` launches one pytest process per backend, one
after the other in a background thread, as soon as the main session has
collected tests/test_keras_backends.py (see conftest.py): they then run on the
second core while the main process runs the rest of the suite, and the tests
in test_keras_backends.py wait for their results.

Each run is the parity ladder and training parity (tests/test_ladder_3_model.py,
tests/test_ladder_4_crossing.py, tests/test_ladder_5_training.py) for ``keras_impl`` on that
backend, with ``torch_impl`` and ``onnx_impl`` as the other engines in the
crossings, plus the import and seeding checks of tests/test_keras_backend_checks.py,
which run first.  The PyTorch run also takes the files of ``MOVED`` whole, which
the main process then skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["jax", "torch"]
FILES = ["tests/test_keras_backend_checks.py", "tests/test_ladder_3_model.py",
         "tests/test_ladder_4_crossing.py", "tests/test_ladder_5_training.py"]
# Files that run here instead of in the main process, whole, on one backend: the
# mutation tests need keras_impl on some backend, and Keras on PyTorch runs them eagerly,
# with no graph to trace per mutated model (12 s here, 21 s on TensorFlow), on the
# second core.  Their own docstring says so.
MOVED = {"torch": ["tests/test_mutations.py"]}
# torch_impl's own rungs already ran in the main process: keep every test that
# involves keras_impl (alone, or beside torch_impl in a cross hand-off or a comparison).
# Checkpoint files hold canonical weights, framework-free: one backend writing and the
# other reading is checked on TensorFlow; what a backend adds, export_weights and
# import_weights, has its own rung here (test_export_of_import_gives_the_weights_back).
SELECT = "not (torch_impl and not keras_impl) and not checkpoint_saved_from_one_backend"
TIMEOUT_S = 900


@dataclass
class Run:
    """One backend's pytest run: its exit code, per-test outcomes and the output's tail."""

    backend: str
    returncode: int | None = None
    outcomes: dict[str, str] = field(default_factory=dict)   # test id -> passed/failed/skipped
    tail: str = ""
    done: threading.Event = field(default_factory=threading.Event)


RUNS: dict[str, Run] = {}


def _env(backend: str) -> dict[str, str]:
    env = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONDONTWRITEBYTECODE="1")
    # XLA's CPU client runs Eigen on a thread per core; one, like every framework in the
    # suite.  (XLA reads only --xla_* flags here and stops at an unknown one; a word
    # without "--" it skips silently, so the thread-pool size itself is not settable.)
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    return env


def _outcomes(report: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = ("failed" if kinds & {"failure", "error"}
                          else "skipped" if "skipped" in kinds else "passed")
    return outcomes


def _run(run: Run, folder: Path) -> None:
    report = folder / f"{run.backend}.xml"
    moved = MOVED.get(run.backend, [])
    select = " or ".join([f"({SELECT})", *(Path(f).stem for f in moved)])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-k", select, f"--junitxml={report}", *FILES, *moved]
    try:
        done = subprocess.run(command, cwd=ROOT, env=_env(run.backend), capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        run.returncode, run.tail = done.returncode, (done.stdout + done.stderr)[-4000:]
        if report.exists():
            run.outcomes = _outcomes(report)
    except subprocess.TimeoutExpired as timeout:
        run.returncode, run.tail = -1, f"timed out after {TIMEOUT_S} s: {timeout}"
    finally:
        run.done.set()


def start() -> None:
    """Start the runs (once); they go one after the other so that two cores stay two."""
    if RUNS:
        return
    folder = Path(tempfile.mkdtemp(prefix="keras-backends-"))
    for backend in BACKENDS:
        RUNS[backend] = Run(backend)

    def run_all():
        for backend in BACKENDS:
            _run(RUNS[backend], folder)

    threading.Thread(target=run_all, daemon=True, name="keras-backend-runs").start()


def result(backend: str) -> Run:
    """Wait for ``backend``'s run to finish and return it."""
    start()
    run = RUNS[backend]
    run.done.wait(TIMEOUT_S * len(BACKENDS))
    return run
