"""Each part imports only what it needs, checked in fresh interpreters.

Every module of ``shared`` (``tests/packages.py`` lists them as the wheel holds
them) is imported in one fresh interpreter, and no framework is loaded: port's
readers and runners and the application layer import theirs only inside
functions.  ``import shared`` loads not even ``onnx``, and no module does unless
it reaches ``shared.onnx`` when imported.  Each engine works with only its own
framework: the others are made unimportable before it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from shared import Seq2SeqConfig
from shared.layout import random_weights
from tests import on_device, packages
from tests.packages import FRAMEWORKS, ONNX_FORMAT
from tests.support import V_SRC, V_TGT

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
loaded = sorted(m for m in {frameworks!r} if m in sys.modules)
print(",".join(loaded))
"""

# An on-device engine builds no model: it loads one exported from the same config.
RUN_EXPORTED = """
import numpy as np
import {backend} as backend
model = backend.load_model({folder!r})
h, c = backend.encode(model, np.array([[5, 6, 0], [0, 0, 0]]))
assert h.shape == (2, 2, 6) and not h[:, 1].any()
assert backend.greedy_decode(model, np.array([[5, 6, 7]]), 4).shape == (1, 4)
loaded = sorted(m for m in {frameworks!r} if m in sys.modules)
print(",".join(loaded))
"""

IMPORT_ALL = """
import importlib, json, sys

def loaded(names):
    return sorted(name for name in names if name in sys.modules)

import shared
seen = [loaded({watched!r})]
for name in {without_onnx!r}:
    importlib.import_module(name)
seen.append(loaded({watched!r}))
for name in {with_onnx!r}:
    importlib.import_module(name)
seen.append(loaded({frameworks!r}))
print(json.dumps(seen))
"""


def _run(code: str) -> str:
    env_code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n" + code
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(env_code)], capture_output=True, text=True,
        timeout=120, cwd=packages.ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _reaches_onnx(module: str, seen: set[str]) -> bool:
    """Whether importing ``module`` imports ``onnx``: its own imports that run on import,
    and those of the modules (and their parent packages) they import, read with ast."""
    if module in seen:
        return False
    seen.add(module)
    parts = module.split(".")
    parents = [".".join(parts[:end]) for end in range(1, len(parts))]
    names = [i.target for i in packages.imports_of(module) if i.at_import] + parents
    known = packages.modules()
    return any(
        name.split(".")[0] == ONNX_FORMAT
        or (name in known and _reaches_onnx(name, seen))
        for name in names
    )


def test_importing_every_module_of_shared_loads_no_framework():
    shared_modules = [name for name in packages.modules() if name.split(".")[0] == "shared"]
    assert "shared.port.runners.torch" in shared_modules  # the walk found the floors
    with_onnx = [name for name in shared_modules if _reaches_onnx(name, set())]
    assert "shared.onnx.graph" in with_onnx
    without_onnx = [name for name in shared_modules if name not in with_onnx]
    watched = sorted(FRAMEWORKS | {ONNX_FORMAT})
    after_shared, after_most, after_all = json.loads(_run(IMPORT_ALL.format(
        watched=watched, frameworks=sorted(FRAMEWORKS),
        without_onnx=without_onnx, with_onnx=with_onnx)))
    assert after_shared == [], f"import shared loaded {after_shared}"
    assert after_most == [], f"the modules of shared that reach no shared.onnx loaded {after_most}"
    assert after_all == [], f"importing every module of shared loaded {after_all}"


# What each engine must work without: every framework it does not import when imported.
# An engine on Keras imports only the framework Keras runs on (KERAS_BACKEND) of those
# it can run on (keras_impl.per_backend.SUPPORTED).
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
KERAS_RUNS_ON = {"tensorflow", "jax", "torch"}


def _own_frameworks(engine: str) -> set[str]:
    own = {i.top for name in packages.modules() if name.split(".")[0] == engine
           for i in packages.imports_of(name) if i.at_import and i.top in FRAMEWORKS}
    return own - KERAS_RUNS_ON | {KERAS_BACKEND} if "keras" in own else own


@pytest.mark.parametrize("engine", packages.engines())
def test_an_engine_works_without_the_other_frameworks(engine):
    """An on-device engine too: LiteRT's runs without TensorFlow and Keras, the frameworks
    its programs were exported from; ExecuTorch's without TensorFlow (torch it needs)."""
    own = _own_frameworks(engine)
    assert own, f"{engine} imports none of FRAMEWORKS when imported"
    for framework in sorted(own):
        pytest.importorskip(framework)
    other = sorted(FRAMEWORKS - own)
    if engine in on_device.RUNTIMES:  # exported here (the cache has test_bad_inputs'), run there
        config = Seq2SeqConfig(V_SRC, V_TGT, 4, 3, num_layers=2, bidirectional=True)
        folder = on_device.export_folder(engine, config, random_weights(config, seed=2),
                                         batch_size=4, max_source_length=4, delegate="portable")
        code = RUN_EXPORTED.format(backend=engine, folder=str(folder), frameworks=other)
    else:
        code = RUN.format(backend=engine, frameworks=other)
    loaded = _run(BLOCK.format(blocked=other) + code)
    assert loaded == "", f"{engine} loaded {loaded}"
