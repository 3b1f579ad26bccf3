"""The project's packages, found as the wheel finds them, and what each module imports.

``packages()`` runs setuptools' own finder with the include patterns of
pyproject.toml's ``[tool.setuptools.packages.find]``, so the list is the wheel's
list: a new floor of ``shared`` or a new ``*_impl`` engine is in it without anyone
adding it.  ``modules()`` lists every module of those packages (``pkgutil``) and
``imports_of()`` reads one module's import statements with ``ast``: nothing is
imported, so no framework starts.  tests/test_floors.py holds the architecture's
rules over these; tests/test_imports.py and tests/test_safety_scan.py walk the same
lists.
"""

from __future__ import annotations

import ast
import os
import pkgutil
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parents[1]

# The deep-learning frameworks and runtimes: what only an engine, port's readers and
# runners, and the application layer's engine loaders may import, and in shared/ only
# inside functions.  A decision, kept here only: an engine whose framework is missing
# from it fails test_floors.py's test_every_engine_imports_a_listed_framework.
FRAMEWORKS = frozenset({
    "tensorflow", "keras", "torch", "jax", "onnxruntime",
    "ai_edge_litert", "executorch",  # the on-device runtimes
})
# The ONNX file-format library: read and written by shared/onnx/ (and lazily by
# port's onnx reader and runner), never by an engine.
ONNX_FORMAT = "onnx"


@cache
def discovery() -> dict:
    """pyproject.toml's ``[tool.setuptools.packages.find]`` table."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["setuptools"]["packages"]["find"]


@cache
def packages(root: Path = ROOT) -> tuple[str, ...]:
    """Every package the wheel holds (``shared``, its floors, every ``*_impl``), sorted."""
    find = discovery()
    found = setuptools.find_packages(
        where=str(root / find.get("where", ["."])[0]),
        include=find.get("include", ("*",)),
        exclude=find.get("exclude", ()),
    )
    return tuple(sorted(found))


# Folders that hold no installed code: the tests, the docs and their examples, the
# benchmarks, and what setuptools builds.
NOT_PACKAGED = frozenset({"tests", "docs", "benchmarks", "build", "dist"})


def left_out(root: Path = ROOT) -> list[str]:
    """Folders with an ``__init__.py`` (outside ``NOT_PACKAGED``) that the wheel would lack."""
    found, missing = packages(root), []
    for folder, subfolders, files in os.walk(root):
        here = os.path.relpath(folder, root)
        subfolders[:] = sorted(
            name for name in subfolders
            if not name.startswith((".", "__")) and not name.endswith(".egg-info")
            and not (here == "." and name in NOT_PACKAGED))
        if here != "." and "__init__.py" in files and here.replace(os.sep, ".") not in found:
            missing.append(here)
    return missing


def package_folder(package: str) -> Path:
    return ROOT.joinpath(*package.split("."))


@cache
def modules() -> dict[str, Path]:
    """Every module of every package -> its file; a package stands for its ``__init__.py``."""
    found = {}
    for package in packages():
        folder = package_folder(package)
        found[package] = folder / "__init__.py"
        for info in pkgutil.iter_modules([str(folder)], prefix=f"{package}."):
            if not info.ispkg:  # a sub-package is listed by packages(), or flagged missing
                found[info.name] = folder / f"{info.name.rsplit('.', 1)[1]}.py"
    return dict(sorted(found.items()))


def engines() -> tuple[str, ...]:
    """The engine packages: the top-level packages other than ``shared`` (each ``*_impl``)."""
    return tuple(p for p in packages() if "." not in p and p != "shared")


@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is absolute (relative imports resolved, and
    ``from a import b`` is ``a.b`` when that is a module of the project)."""

    module: str
    target: str
    line: int
    at_import: bool  # runs when the module is imported (not inside a function)

    @property
    def top(self) -> str:
        return self.target.split(".")[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.Module):
    """(import statement, whether it runs on import) for every import in the tree."""
    stack = [(node, True) for node in tree.body]
    while stack:
        node, at_import = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, at_import
            continue
        # A function body runs when called; an ``if TYPE_CHECKING:`` block never runs.
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            at_import = False
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend((child, False) for child in node.body)
            stack.extend((child, at_import) for child in node.orelse)
            continue
        stack.extend((child, at_import) for child in ast.iter_child_nodes(node))


def _base(module: str, level: int, is_package: bool) -> str:
    """The package that a relative import of ``level`` dots starts from."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join(parts)


def imports_in(source: str, module: str, is_package: bool = False,
               known: frozenset[str] | None = None) -> list[Import]:
    """Every name ``source`` imports, as module ``module`` of the project."""
    known = frozenset(modules()) if known is None else known
    found = []
    for node, at_import in _statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno, at_import) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            start = _base(module, node.level, is_package)
            base = f"{start}.{base}" if node.module else start
        for alias in node.names:
            target = f"{base}.{alias.name}"
            found.append(Import(module, target if target in known else base, node.lineno,
                                at_import))
    return sorted(found, key=lambda i: i.line)


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    """Every name one module of the project imports, read from its file."""
    path = modules()[module]
    source = path.read_text(encoding="utf-8")
    return tuple(imports_in(source, module, path.name == "__init__.py"))
