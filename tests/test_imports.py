"""Each part imports only what it needs, checked in fresh interpreters.

``shared`` loads no framework; ``keras_impl`` loads no torch; ``torch_impl``
loads no TensorFlow or Keras; ``onnx_impl`` (and the exporter it uses) loads none
of them.  "Works with only its own extra installed" is
checked by making the other framework unimportable before the backend runs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK = """
import sys, importlib.abc

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")

sys.meta_path.insert(0, Missing())
"""

RUN = """
import numpy as np
import {backend} as backend
from shared import Seq2SeqConfig
config = Seq2SeqConfig(9, 9, 4, 4, num_layers=2, bidirectional=True)
model = backend.build_model(config)
h, c = backend.encode(model, np.array([[5, 6, 0], [0, 0, 0]]))
assert h.shape == (2, 2, 8) and not h[:, 1].any()
assert backend.greedy_decode(model, np.array([[5, 6, 7]]), 4).shape == (1, 4)
loaded = sorted(m for m in ("torch", "tensorflow", "keras", "jax") if m in sys.modules)
print(",".join(loaded))
"""


def _run(code: str) -> str:
    env_code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n" + code
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(env_code)], capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def test_import_shared_loads_no_framework():
    code = """
import sys
import shared, shared.layout, shared.reference, shared.decoding.search, shared.checkpoint
import shared.app.cli
import shared.app.backends, shared.app.quiet, shared.core.budget
import shared.app.demo, shared.ladder.parity
print(",".join(sorted(m for m in ("torch", "tensorflow", "keras", "jax") if m in sys.modules)))
"""
    assert _run(code) == ""


@pytest.mark.parametrize(
    ("backend", "framework", "other"),
    [("torch_impl", "torch", ["tensorflow", "keras", "jax"]),
     ("keras_impl", "tensorflow", ["torch"]),
     ("onnx_impl", "onnxruntime", ["torch", "tensorflow", "keras", "jax"])],
)
def test_backend_works_without_the_other_framework(backend, framework, other):
    pytest.importorskip(framework)
    loaded = _run(BLOCK.format(blocked=other) + RUN.format(backend=backend))
    assert not set(loaded.split(",")) & set(other), f"{backend} loaded {loaded}"
