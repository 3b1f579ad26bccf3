"""One test session, one process, both frameworks: set them up once, deliberately.

TensorFlow takes ~7 s to import, so the whole suite runs in one process.  Both
frameworks then share two cores: each gets one thread per op, so neither's idle
pool spins against the other, and results do not depend on how work is split.
oneDNN is turned off in TensorFlow so that two runs give bit-identical numbers.
"""

import contextlib
import importlib
import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest


def _frameworks_ready() -> None:
    """Import both frameworks once and pin their thread pools before any op runs."""
    import shared

    # Keras's own backend framework (TensorFlow by default) and PyTorch; a
    # test run for Keras on JAX or PyTorch (test_keras_backends.py) imports no TensorFlow.
    frameworks = ["torch"]
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        frameworks.append("tensorflow")
    for name in frameworks:
        # A one-framework install: the other's tests skip themselves.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    shared.configure_threads(intra_op=1, inter_op=1)


_frameworks_ready()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test: random but repeatable data."""
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """Run the tests that wait for the Keras-on-JAX/PyTorch processes last, when they are done.

    Those processes also take whole files off this one (``keras_backend_runs.MOVED``):
    when they run, this process skips those files' tests rather than run them twice.
    An on-device engine's rows of the grid exist for the grid models it exports only
    (``support.runs``): the others are left out, not collected.
    """
    from tests.support import runs

    outside = {item for item in items
               if hasattr(item, "callspec") and not runs(item.callspec.params)}
    if outside:
        config.hook.pytest_deselected(items=list(outside))
        items[:] = [item for item in items if item not in outside]
    waiting = [item for item in items if item.nodeid.startswith("tests/test_keras_backends.py")]
    if not waiting:
        return
    items[:] = [item for item in items if item not in waiting] + waiting
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        return
    from tests import keras_backend_runs

    for backend, files in keras_backend_runs.MOVED.items():
        if importlib.util.find_spec(backend) is None:
            continue  # that run cannot start: the files stay here
        skip = pytest.mark.skip(reason=f"runs in the Keras-on-{backend} run "
                                       "(tests/keras_backend_runs.py)")
        for item in items:
            if item.nodeid.split("::")[0] in files:
                item.add_marker(skip)


def pytest_collection_finish(session):
    """Start the Keras-on-JAX and Keras-on-PyTorch runs early when this session has their tests.

    They run in their own processes beside this one (tests/keras_backend_runs.py);
    started now, they use the second core while this process runs everything else.
    """
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        return  # a backend run itself
    if any(item.nodeid.startswith("tests/test_keras_backends.py") for item in session.items):
        from tests import keras_backend_runs

        keras_backend_runs.start()
