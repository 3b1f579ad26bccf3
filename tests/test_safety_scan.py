"""A source scan: no code path in this repository can run code hidden in a file it opens.

A pickle is a small program; unpickling one (``pickle.load``, ``torch.load``
without ``weights_only=True``, ``np.load(allow_pickle=True)``) runs whatever
functions its author chose.  A Keras model file can carry Python too, and
``eval``/``exec`` run any string.  So this scan reads every Python file of
every installed package (``tests/packages.py``: ``shared`` and every ``*_impl``
engine, found as the wheel finds them), and of benchmarks/, docs/examples/ and
tests/, with ``ast`` (calls, not text: ``model.eval()`` is not ``eval(``) and
fails with each finding's file:line.

Exceptions are listed below by file and rule, each with its reason; there are
none in the packages people install.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import packages

ROOT = packages.ROOT
INSTALLED = tuple(p for p in packages.packages() if "." not in p)  # shared and the engines
SCANNED = (*INSTALLED, "benchmarks", "docs/examples", "tests")
THIS = Path(__file__).resolve()  # its snippets below would be findings

# Modules whose load functions unpickle.
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve"}
UNPICKLERS = {"load", "loads", "Unpickler", "open"}
# Keras calls that rebuild a model, with its Python, from a file or a config.
KERAS_LOADERS = {"load_model", "model_from_json", "model_from_yaml", "from_config"}

# The installed packages' own loaders, called by their module's name (``litert_impl.load_model``).
OUR_LOADERS = {f"{package}.load_model" for package in INSTALLED}

# (file, rule) -> why that file may break that rule.
ALLOWED = {
    ("tests/test_on_device.py", "eval-exec"): (
        "runs docs/on-device.md's bare-runtime greedy loop, a block of this repository's own "
        "docs, as printed, to prove it answers as the reference"
    ),
    ("tests/test_checkpoint.py", "pickle-import"): (
        "builds a malicious pickle payload to feed to load_checkpoint"
    ),
    ("tests/test_checkpoint.py", "unpickling"): (
        "unpickles its OWN payload once, to prove the payload is live before showing that "
        "load_checkpoint refuses it"
    ),
    ("tests/test_bad_files.py", "pickle-import"): (
        "writes pickle files to feed to the loaders and the command line; never reads one"
    ),
    ("docs/examples/08_safe_loading.py", "pickle-import"): (
        "writes a pickle payload to show that the safe loaders refuse it; never reads one"
    ),
}
# (file, rule) -> the keyword that must be given as True for a call to pass there.
ALLOWED_WITH = {
    ("docs/examples/08_safe_loading.py", "keras-loading"): "safe_mode",  # shows it refusing
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Each imported name -> the dotted name it stands for ("np" -> "numpy")."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """"torch.load" for ``torch.load`` (through aliases), None for anything not a name chain."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _keyword_is(call: ast.Call, name: str, value: bool) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
        for k in call.keywords
    )


def _call_findings(call: ast.Call, aliases: dict[str, str]) -> list[tuple[str, str]]:
    """(rule, what) for each rule that one call breaks."""
    found = []
    name = _dotted(call.func, aliases)
    last = call.func.attr if isinstance(call.func, ast.Attribute) else (name or "")
    last = last.split(".")[-1]
    module = (name or "").split(".")[0]
    if name == "torch.load" and not _keyword_is(call, "weights_only", True):
        found.append(("torch-load", "torch.load without weights_only=True"))
    if module in PICKLE_MODULES and last in UNPICKLERS:
        found.append(("unpickling", f"{name}("))
    if name in {"eval", "exec", "builtins.eval", "builtins.exec"}:  # not model.eval()
        found.append(("eval-exec", f"{name}("))
    # An installed package's own load_model (onnx_impl's, litert_impl's, executorch_impl's)
    # is ours: it reads only the checked files its exporter wrote (docs/onnx.md,
    # docs/on-device.md), and its body is scanned here like any other code.
    if last in KERAS_LOADERS and name not in OUR_LOADERS:
        found.append(("keras-loading", f"{name or last}("))
    for keyword in call.keywords:
        is_false = isinstance(keyword.value, ast.Constant) and keyword.value.value is False
        if keyword.arg == "allow_pickle" and not is_false:
            found.append(("allow-pickle", f"{name or last}(..., allow_pickle=...)"))
    return found


def scan_source(source: str, relative: str = "<snippet>") -> list[str]:
    """Every finding in one file's source, as "file:line: rule: what"."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        allowed = (relative, "pickle-import") in ALLOWED
        for module in modules:
            if module.split(".")[0] in PICKLE_MODULES and not allowed:
                findings.append(f"{relative}:{node.lineno}: pickle-import: import {module}")
        if not isinstance(node, ast.Call):
            continue
        for rule, what in _call_findings(node, aliases):
            if (relative, rule) in ALLOWED:
                continue
            keyword = ALLOWED_WITH.get((relative, rule))
            if keyword is not None and _keyword_is(node, keyword, True):
                continue
            findings.append(f"{relative}:{node.lineno}: {rule}: {what}")
    return findings


def _scanned_files() -> list[Path]:
    files = []
    for folder in SCANNED:
        files.extend(sorted((ROOT / folder).rglob("*.py")))
    return [path for path in files if path.resolve() != THIS]


def test_the_scan_covers_the_packages():
    scanned = set(_scanned_files())
    assert {"shared", "keras_impl", "torch_impl", "onnx_impl"} <= set(INSTALLED)
    missing = sorted(set(packages.modules().values()) - scanned)
    assert not missing, f"modules of the installed packages not scanned: {missing}"
    assert ROOT / "tests" / "test_checkpoint.py" in scanned


def test_no_file_can_run_code_hidden_in_what_it_opens():
    findings = []
    for path in _scanned_files():
        relative = path.relative_to(ROOT).as_posix()
        findings.extend(scan_source(path.read_text(encoding="utf-8"), relative))
    assert not findings, "unsafe calls or imports:\n" + "\n".join(findings)


def test_no_exception_is_granted_to_the_installed_packages():
    for relative, _ in [*ALLOWED, *ALLOWED_WITH]:
        assert relative.split("/")[0] not in INSTALLED, relative
        assert (ROOT / relative).is_file(), f"an exception for {relative}, which is no file"


BAD_SNIPPET = """\
import pickle
import numpy as np
import torch as th
from keras.models import load_model
state = th.load("model.pt")
state = th.load("model.pt", weights_only=False)
weights = pickle.loads(blob)
arrays = np.load("a.npy", allow_pickle=True)
eval("1 + 1")
exec(code)
model = load_model("model.keras")
layer = layer_class.from_config(config)
"""

GOOD_SNIPPET = """\
import numpy as np
import torch
state = torch.load("model.pt", weights_only=True)
arrays = np.load("a.npy")
arrays = np.load("a.npy", allow_pickle=False)
model.eval()
evaluated = evaluate(model)
"""


def test_the_scanner_flags_each_unsafe_call():
    findings = scan_source(BAD_SNIPPET)
    expected = [
        "<snippet>:1: pickle-import: import pickle",
        "<snippet>:5: torch-load: torch.load without weights_only=True",
        "<snippet>:6: torch-load: torch.load without weights_only=True",
        "<snippet>:7: unpickling: pickle.loads(",
        "<snippet>:8: allow-pickle: numpy.load(..., allow_pickle=...)",
        "<snippet>:9: eval-exec: eval(",
        "<snippet>:10: eval-exec: exec(",
        "<snippet>:11: keras-loading: keras.models.load_model(",
        "<snippet>:12: keras-loading: layer_class.from_config(",
    ]
    assert sorted(findings) == sorted(expected)


def test_the_scanner_passes_safe_calls():
    assert scan_source(GOOD_SNIPPET) == []


@pytest.mark.parametrize(
    ("relative", "source", "flagged"),
    [
        ("docs/examples/08_safe_loading.py", "keras.saving.load_model(p, safe_mode=True)", False),
        ("docs/examples/08_safe_loading.py", "keras.saving.load_model(p)", True),
        ("docs/examples/08_safe_loading.py", "keras.saving.load_model(p, safe_mode=False)", True),
        ("tests/test_bad_files.py", "import pickle", False),
        ("tests/test_bad_files.py", "import pickle\npickle.load(f)", True),
        ("shared/checkpoint/load.py", "import pickle", True),
    ],
)
def test_exceptions_are_as_narrow_as_written(relative, source, flagged):
    assert bool(scan_source(source, relative)) is flagged
