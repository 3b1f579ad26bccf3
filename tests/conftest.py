"""One test session, one process, both frameworks: set them up once, deliberately.

TensorFlow is slow to import, so a session imports each framework once.  Both
frameworks then share two cores: each gets one thread per op, so neither's idle
pool spins against the other, and results do not depend on how work is split.
oneDNN is turned off in TensorFlow so that two runs give bit-identical numbers.

A session runs on one Keras backend, KERAS_BACKEND's (TensorFlow when unset);
``make test`` (tests/run.py) runs the suite's share on the other two beside it.

Every session has two CPU devices for the data-parallel tests
(tests/test_ladder_5_replicas.py): JAX's virtual devices and TensorFlow's logical
ones, made before either framework starts.  Ops without a device of their own stay
on the first, so no other test sees a difference.
"""

import contextlib
import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# XLA (Keras on JAX) runs Eigen on a thread per core unless told otherwise; it reads the
# flag when JAX first starts, after this.  (Its pool size itself is not settable.)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np
import pytest

# The replicas of the data-parallel tests: devices of this process on Keras's backends.
REPLICAS = 2


def _frameworks_ready() -> None:
    """Import both frameworks once and pin their thread pools before any op runs."""
    import shared
    from shared.core.runtime import configure_devices

    # Keras's own backend framework (TensorFlow by default) and PyTorch; a
    # test run for Keras on JAX or PyTorch (tests/run.py) imports no TensorFlow.
    frameworks = ["torch"]
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        frameworks.append("tensorflow")
    for name in frameworks:
        # A one-framework install: the other's tests skip themselves.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    shared.configure_threads(intra_op=1, inter_op=1)
    configure_devices(REPLICAS)  # before TensorFlow's first op and JAX's first device use


_frameworks_ready()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test: random but repeatable data."""
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """An on-device engine's rows of the grid exist for the grid models it exports only
    (``support.runs``): the others are left out, not collected."""
    from tests.support import runs

    outside = {item for item in items
               if hasattr(item, "callspec") and not runs(item.callspec.params)}
    if outside:
        config.hook.pytest_deselected(items=list(outside))
        items[:] = [item for item in items if item not in outside]


def pytest_report_header(config) -> str:
    """Which Keras backend this session runs, and how to run the same tests on the others."""
    backend = os.environ["KERAS_BACKEND"]
    others = "|".join(name for name in ("tensorflow", "jax", "torch") if name != backend)
    return (f"Keras on {backend}; on another: KERAS_BACKEND={others} python -m pytest ... "
            "(make test, python -m tests.run, runs the tests marked every_keras_backend on "
            "all three)")
