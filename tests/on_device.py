"""The on-device engines' models for the tests: exported once, kept on disk, keyed by their making.

``litert_impl`` and ``executorch_impl`` run programs exported from ``keras_impl`` (LiteRT)
and ``torch_impl`` (ExecuTorch); they cannot build a model from weights.  So a test's
model holding some weights is an export: ``keras_impl.on_device.export_litert`` or
``torch_impl.on_device.export_executorch`` of a framework model holding them, then
``load_model`` of the folder, checked like any other.  Exporting takes seconds (the
converter) to tens of seconds (ExecuTorch's lowering, which grows with the source
length), so each folder is made once and kept in ``.cache/on-device/`` under the
SHA-256 of everything that makes it: the runtime, the fixed shape, the delegate, the
config, the weights, the frameworks' versions and the exporter's own code (every
module of the exporting engine, ``shared/ondevice`` and ``shared/layout``).  A change
to any of them makes a new folder; a folder is never trusted, only loaded
(``load_model`` checks it).  ``make clean`` removes the cache.

Shapes: B_f fixed batch, S_f fixed source length.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from shared import Seq2SeqConfig
from shared.app.backends import load_exported

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "on-device"
# What each on-device engine needs: its runtime, and the framework it is exported from.
RUNTIMES = {"litert_impl": "litert", "executorch_impl": "executorch"}
NEEDS = {"litert_impl": ("ai_edge_litert", "tensorflow", "keras"),
         "executorch_impl": ("executorch", "torch")}
EXPORTERS = {"litert_impl": "keras_impl", "executorch_impl": "torch_impl"}
_VERSIONS = {"litert_impl": ("ai-edge-litert", "tensorflow-cpu", "tensorflow", "keras"),
             "executorch_impl": ("executorch", "torch")}


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _code(engine: str) -> list[str]:
    """The exporter's own modules: what a change to would change an exported file."""
    folders = [ROOT / EXPORTERS[engine], ROOT / "shared" / "ondevice", ROOT / "shared" / "layout"]
    return [hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in folders for path in sorted(folder.glob("*.py"))]


def cache_key(engine: str, config: Seq2SeqConfig, weights: dict, batch_size: int,
              max_source_length: int, delegate: str) -> str:
    """SHA-256 of everything that makes the exported folder (see the module docstring)."""
    digest = hashlib.sha256(json.dumps({
        "engine": engine, "config": config.to_dict(), "batch_size": batch_size,
        "max_source_length": max_source_length, "delegate": delegate,
        "versions": [_version(name) for name in _VERSIONS[engine]], "code": _code(engine),
    }, sort_keys=True).encode())
    for name, value in weights.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value, np.float32).tobytes())
    return digest.hexdigest()


def export_folder(engine: str, config: Seq2SeqConfig, weights: dict, batch_size: int,
                  max_source_length: int, delegate: str = "portable") -> Path:
    """The folder of ``engine``'s programs of ``weights``: from the cache, or exported now.

    ``delegate``: ExecuTorch's, "portable" unless asked (its lowering for XNNPACK takes
    several times longer); LiteRT has none, so it is not part of a LiteRT folder's key.
    """
    if engine == "litert_impl":
        delegate = "-"
    key = cache_key(engine, config, weights, batch_size, max_source_length, delegate)
    folder = CACHE / f"{RUNTIMES[engine]}-{key[:24]}"
    if (folder / "metadata.json").exists():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=CACHE))
    try:
        exporter = importlib.import_module(EXPORTERS[engine])
        model = exporter.build_model(config)
        exporter.import_weights(model, weights)
        if engine == "litert_impl":
            from keras_impl.on_device import export_litert

            export_litert(model, building, batch_size=batch_size,
                          max_source_length=max_source_length)
        else:
            from torch_impl.on_device import export_executorch

            export_executorch(model, building, batch_size=batch_size,
                              max_source_length=max_source_length, delegate=delegate)
        os.replace(building, folder)  # whole or not at all; another run may have made it too
    except OSError:
        if not (folder / "metadata.json").exists():
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def importorskip(engine: str):
    """The engine's module, or a skip naming what is missing (its runtime or its exporter)."""
    for module in NEEDS[engine]:
        pytest.importorskip(module, reason=f"{engine} needs {module} to export and run its "
                                           f"programs: pip install 'seq2seq-rosetta[all]'")
    return importlib.import_module(engine)


@functools.cache
def _loaded(engine: str, folder: Path):
    importorskip(engine)
    return load_exported(RUNTIMES[engine], folder)


def exported_model(engine: str, config: Seq2SeqConfig, weights: dict, batch_size: int = 4,
                   max_source_length: int = 4, delegate: str = "portable"):
    """(engine module, model) of ``engine`` running the programs of ``weights``."""
    module = importorskip(engine)
    folder = export_folder(engine, config, weights, batch_size, max_source_length, delegate)
    return module, _loaded(engine, folder)
