"""Keras on all three of its backends: the parity grid and training parity on JAX and PyTorch.

The main process runs Keras on TensorFlow; tests/keras_backend_runs.py runs the
same parity ladder (tests/test_ladder_3_model.py, tests/test_ladder_4_crossing.py) and
training parity (tests/test_ladder_5_training.py) for Keras on JAX and on PyTorch, each in its
own process, against the NumPy reference and against the other engines, cross
hand-offs included.  Each test here
is one backend's whole run: it fails with the names of the tests that failed
there and the tail of that run's output.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests import keras_backend_runs

# The least a run must have passed: every keras_impl rung of both files, not a run
# that skipped everything because a framework was missing.
MIN_PASSED = 100


@pytest.mark.parametrize("backend", keras_backend_runs.BACKENDS)
def test_parity_and_training_on_keras_backend(backend):
    for module in ("keras", backend):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"Keras on {backend} needs {module}, which is not installed")
    run = keras_backend_runs.result(backend)
    failed = sorted(name for name, outcome in run.outcomes.items() if outcome == "failed")
    passed = sum(outcome == "passed" for outcome in run.outcomes.values())
    assert run.returncode == 0 and not failed, (
        f"Keras on {backend}: {len(failed)} failed {failed[:20]}\n{run.tail}"
    )
    assert passed >= MIN_PASSED, f"Keras on {backend}: only {passed} passed\n{run.tail}"
