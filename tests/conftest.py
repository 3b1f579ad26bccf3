"""One test session, one process, both frameworks: set them up once, deliberately.

TensorFlow takes ~7 s to import, so the whole suite runs in one process.  Both
frameworks then share two cores: each gets one thread per op, so neither's idle
pool spins against the other, and results do not depend on how work is split.
oneDNN is turned off in TensorFlow so that two runs give bit-identical numbers.
"""

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

    try:
        import tensorflow  # noqa: F401
        import torch  # noqa: F401
    except ImportError:  # a one-framework install: the other's tests skip themselves
        pass
    shared.configure_threads(intra_op=1, inter_op=1)


_frameworks_ready()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test: random but repeatable data."""
    return np.random.default_rng(1234)
