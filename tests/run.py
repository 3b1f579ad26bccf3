"""The whole suite on Keras's three backends: what ``make test`` runs.

    python -m tests.run

Keras fixes its backend when it is first imported, so each backend needs a
process of its own.  Three pytest runs, chosen by the markers that the test files
declare (pyproject.toml lists them):

    Keras on TensorFlow  the main run: every test but those marked keras_torch_backend
    Keras on JAX         the tests marked every_keras_backend
    Keras on PyTorch     the tests marked every_keras_backend or keras_torch_backend

The main run shows its output as it goes; the JAX run and then the PyTorch run go
one after the other beside it, on the second core.  Each run is a process started
through ``shared.app.elsewhere`` (one thread per framework, XLA's Eigen pool off)
that calls ``pytest_here``.  The runs beside keep keras_impl's tests only:
torch_impl's and onnx_impl's numbers do not depend on Keras's backend, and the
main run checks them (``KERAS_ONLY``).  The mutations (tests/test_mutations.py,
keras_torch_backend) run on Keras on PyTorch alone: they are the same keras_impl
code on every backend, and PyTorch runs each mutated model eagerly where
TensorFlow would trace a graph for it.

The command fails when any run fails, with the names of the failed tests and the
tail of that run's output.  One file on one backend is plain pytest:

    KERAS_BACKEND=jax python -m pytest tests/test_ladder_5_training.py

runs all of that file's tests on Keras on JAX (add ``-m every_keras_backend -k
"<KERAS_ONLY>"`` for just what the JAX run takes from it); without KERAS_BACKEND,
on TensorFlow.  The session's header says so.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from shared.app.elsewhere import ElsewhereError, start_elsewhere

TESTS = Path(__file__).resolve().parent
MAIN_ARGS = ["-q", "-m", "not keras_torch_backend"]
# Each other backend: the markers of its share.
BESIDE = {"jax": ["every_keras_backend"], "torch": ["every_keras_backend", "keras_torch_backend"]}
# In the runs beside, keras_impl's tests, the tests of no engine, and the mutations whole
# (-k also matches marker names): torch_impl's and onnx_impl's own tests ran in the main run.
KERAS_ONLY = "keras_impl or keras_torch_backend or not (torch_impl or onnx_impl)"
TIMEOUT_S = 1800  # each run; only a hang comes near it
TAIL_CHARS = 4000


class Outcomes:
    """A pytest plugin that counts what passed and skipped and names what failed."""

    def __init__(self) -> None:
        self.passed, self.skipped, self.failed = 0, 0, []

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            if report.nodeid not in self.failed:  # a failed call and teardown: one name
                self.failed.append(report.nodeid)
        elif report.skipped:
            self.skipped += 1
        elif report.when == "call":
            self.passed += 1

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid or 'collection'} (not collected)")


def pytest_here(args: list[str]) -> dict:
    """Run pytest with ``args`` in this process: {"exit_code", "passed", "skipped", "failed"}."""
    import pytest

    outcomes = Outcomes()
    exit_code = pytest.main(args, plugins=[outcomes])
    return {"exit_code": int(exit_code), "passed": outcomes.passed,
            "skipped": outcomes.skipped, "failed": outcomes.failed}


def marked_files(markers: list[str]) -> list[str]:
    """The test files that declare one of ``markers`` (``pytest.mark.NAME`` in their text).

    Only these are collected in a run beside, so that collecting does not import
    every test module (some import TensorFlow); ``-m`` then selects within them.
    """
    pattern = re.compile(r"\bmark\.(" + "|".join(markers) + r")\b")
    return [f"tests/{path.name}" for path in sorted(TESTS.glob("test_*.py"))
            if pattern.search(path.read_text())]


def beside_args(backend: str) -> list[str]:
    """The pytest arguments of the run on Keras on ``backend``."""
    markers = BESIDE[backend]
    return ["-q", "-p", "no:cacheprovider", "-m", " or ".join(markers), "-k", KERAS_ONLY,
            *marked_files(markers)]


def run_pytest(backend: str, args: list[str], output) -> dict:
    """pytest ``args`` in a fresh process on Keras on ``backend``; its outcomes and seconds."""
    tic = time.perf_counter()
    try:
        result = start_elsewhere("tests.run:pytest_here", {"args": args}, keras_backend=backend,
                                 threads=1, timeout=TIMEOUT_S, output=output).result()
    except ElsewhereError as error:
        result = {"exit_code": -1, "passed": 0, "skipped": 0, "failed": [str(error)]}
    return result | {"seconds": time.perf_counter() - tic}


class Beside(threading.Thread):
    """The runs on the other backends, one after the other, while the main run goes on."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True, name="keras-backend-runs")
        self.folder = folder
        self.results: dict[str, dict] = {}

    def run(self) -> None:
        for backend in BESIDE:
            missing = [name for name in ("keras", backend)
                       if importlib.util.find_spec(name) is None]
            if missing:
                self.results[backend] = {"not_run": f"{', '.join(missing)} not installed"}
                continue
            output = self.folder / f"keras-{backend}.txt"
            result = run_pytest(backend, beside_args(backend), output)
            self.results[backend] = result | {"output": output}


def verdict(name: str, result: dict) -> tuple[bool, str]:
    """(passed, what to print) for one run."""
    if "not_run" in result:
        return True, f"{name}: not run ({result['not_run']})"
    line = f"{name}: {result['passed']} passed, {result['skipped']} skipped"
    if "seconds" in result:
        line += f" in {result['seconds']:.0f} s"
    # Exit 5 is "no tests collected": a share that selected nothing is a broken selection.
    ok = result["exit_code"] == 0 and not result["failed"] and result["passed"] > 0
    if ok:
        return True, line
    failed = result["failed"]
    line += f", exit code {result['exit_code']}"
    if failed:
        line += f"; {len(failed)} failed:\n  " + "\n  ".join(failed)
    if "output" in result:
        text = result["output"].read_text(errors="replace")
        line += f"\n--- the last of {result['output']} ---\n{text[-TAIL_CHARS:]}"
    return False, line


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="seq2seq-tests-"))
    beside = Beside(folder)
    beside.start()
    try:
        main_result = run_pytest("tensorflow", MAIN_ARGS, sys.stdout)
        if beside.is_alive():
            print(f"waiting for the runs on Keras on {' and '.join(BESIDE)}", flush=True)
        beside.join()
    except KeyboardInterrupt:  # Ctrl-C reaches every run's process too; each stops itself
        print(f"interrupted; the runs' output is in {folder}")
        return 130
    unfinished = {"exit_code": -1, "passed": 0, "skipped": 0, "failed": ["(did not finish)"]}
    reports = [verdict("Keras on tensorflow", main_result)]
    reports += [verdict(f"Keras on {backend}", beside.results.get(backend, unfinished))
                for backend in BESIDE]
    print("\n".join(text for _, text in reports))
    passed = all(ok for ok, _ in reports)
    if passed:
        shutil.rmtree(folder)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
