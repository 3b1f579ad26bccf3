"""The floors of the architecture, held by a test: every module's imports read with ``ast``.

Every module of every installed package (``tests/packages.py``: ``shared``, its
floors and every ``*_impl`` engine, found as the wheel finds them) is read, never
imported, and its imports (top-level and inside functions, relative ones resolved)
must keep these rules:

- floors: a module of a floor of ``shared`` (each sub-package; a module belongs to
  the innermost one) imports from its own floor, the floors inside it, and the
  floors its package docstring names on its ``May import:`` line; never from the
  facade (the modules directly in ``shared/``, above every floor);
- circles: no circle of imports that run when a module is imported, and none
  between the floors (each ``shared.X`` one node, the facade and each engine one
  more), counting every import;
- engines: nothing below ``shared.app`` imports an engine package (nor imports by
  name at run time, which no reader can check); ``shared.app`` imports one only
  inside a function; an engine imports neither ``shared.app`` nor another engine;
- frameworks: only the engines, port's readers, writers and runners, and the ``shared.app``
  modules that load engines import a framework (``packages.FRAMEWORKS``), and in
  ``shared`` only inside a function; ``onnx`` only in ``shared.onnx`` and, inside a
  function, in port's ``onnx`` reader and runner;
- tests: no module of a package imports ``tests``.

Each finding names the module, the line and the rule.  The checker is itself
tested on small made-up projects, so each rule is seen to fail.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from functools import cached_property

import pytest

from tests import packages
from tests.packages import FRAMEWORKS, ONNX_FORMAT, Import

APP = "shared.app"  # the application layer: the command line, demo, experiment, loaders
# The floors whose modules each read or run one framework's files; a reader or a
# runner imports its framework inside a function (a decision: port's docstrings).
FRAMEWORK_FLOORS = ("shared.port.readers", "shared.port.runners", "shared.port.writers")
DYNAMIC = {"import_module", "__import__"}  # importing a module by a name made at run time
MAY_IMPORT = re.compile(r"^May import:(.*?)(?:\n\s*\n|\Z)", re.MULTILINE | re.DOTALL)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


@dataclass(repr=False)  # a failing test prints its findings, not every source
class Project:
    """Modules' sources, read as a project: floors, each module's imports, dynamic imports."""

    sources: dict[str, str]  # module -> its source
    package_names: frozenset[str]  # the modules that are packages (an __init__.py)
    engines: tuple[str, ...]

    @classmethod
    def installed(cls) -> Project:
        sources = {name: path.read_text(encoding="utf-8")
                   for name, path in packages.modules().items()}
        return cls(sources, frozenset(packages.packages()), packages.engines())

    @cached_property
    def imports(self) -> dict[str, list[Import]]:
        known = frozenset(self.sources)
        return {name: packages.imports_in(source, name, name in self.package_names, known)
                for name, source in self.sources.items()}

    @cached_property
    def floors(self) -> dict[str, str | None]:
        """Each floor (every sub-package of shared) -> its ``May import:`` text, or None."""
        found = {}
        for name in sorted(self.package_names):
            if name.startswith("shared."):
                docstring = ast.get_docstring(ast.parse(self.sources[name])) or ""
                match = MAY_IMPORT.search(docstring)
                found[name] = " ".join(match.group(1).split()) if match else None
        return found

    def may_import(self, floor: str) -> set[str]:
        """The floors that ``floor``'s docstring names ("every floor of shared": all)."""
        text = self.floors[floor] or ""
        if "every floor of shared" in text:
            return set(self.floors)
        return set(re.findall(r"\bshared(?:\.\w+)+", text))

    def floor_of(self, module: str) -> str | None:
        """The innermost floor holding ``module``; None for the facade and the engines."""
        holding = [floor for floor in self.floors if _within(module, floor)]
        return max(holding, key=len) if holding else None

    def node_of(self, module: str) -> str:
        """The module's place in the picture: ``shared.X``, the facade ``shared``, or an engine."""
        parts = module.split(".")
        if parts[0] == "shared" and len(parts) > 1 and f"shared.{parts[1]}" in self.floors:
            return f"shared.{parts[1]}"
        return parts[0]

    def resolve(self, target: str) -> str | None:
        """The project module an imported name is (its longest known prefix), or None."""
        parts = target.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self.sources:
                return ".".join(parts[:end])
        return None

    def dynamic_imports(self, module: str) -> list[int]:
        """Lines where ``module`` imports by a name made at run time."""
        lines = []
        for node in ast.walk(ast.parse(self.sources[module])):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in DYNAMIC:
                    lines.append(node.lineno)
        return lines

    def loads_engines(self, module: str) -> bool:
        """A module of the application layer that loads an engine: by name or at run time."""
        return _within(module, APP) and (
            any(i.top in self.engines for i in self.imports[module])
            or bool(self.dynamic_imports(module)))


    def where(self, module: str, line: int) -> str:
        """``shared/onnx/export.py:46``: the file and the line, for a finding."""
        path = module.replace(".", "/")
        return f"{path}/__init__.py:{line}" if module in self.package_names else f"{path}.py:{line}"

    def finding(self, i: Import, rule: str, what: str) -> str:
        return f"{self.where(i.module, i.line)}: {rule}: {what}"


def floor_findings(project: Project) -> list[str]:
    found = []
    for floor, text in project.floors.items():
        where = project.where(floor, 1)
        if text is None:
            found.append(f"{where}: floor: its package docstring has no 'May import:' line")
        for named in sorted(project.may_import(floor) - set(project.floors)):
            found.append(f"{where}: floor: {floor}'s 'May import:' names {named}, no floor")
    for module, imports in project.imports.items():
        floor = project.floor_of(module)
        if floor is None:
            continue  # the facade and the engines stand above the floors
        allowed = project.may_import(floor)
        for i in imports:
            target = project.resolve(i.target)
            if target is None:
                continue
            if project.node_of(target) == "shared":
                found.append(project.finding(i, "facade", f"{floor} imports the facade "
                                             f"{target}; import from the floor that defines it"))
                continue
            to = project.floor_of(target)
            if to is None or _within(to, floor) or to in allowed:
                continue
            found.append(project.finding(i, "floor", f"{floor} imports {target} (of {to}); "
                                         f"its docstring says May import: {project.floors[floor]}"))
    return found


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node, or a node that reaches itself."""
    index, low, stack, on_stack, parts = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = []
            while not part or part[-1] != node:
                part.append(stack.pop())
                on_stack.discard(part[-1])
            if len(part) > 1 or node in edges.get(node, ()):
                parts.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return parts


def _cycle(edges: dict[str, set[str]], part: list[str]) -> list[str]:
    """One circle through ``part[0]`` inside ``part``: [a, b, ..., a] (a breadth-first walk)."""
    start, inside = part[0], set(part)
    came_from = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for other in sorted(edges.get(node, ())):
            if other == start:
                path = [node]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
            if other in inside and other not in came_from:
                came_from[other] = node
                queue.append(other)
    raise AssertionError(f"no circle through {start} in {part}")


def circle_findings(project: Project) -> list[str]:
    """Circles of imports run at import time between modules, and of any import between floors.

    A package's own ``__init__`` runs before its modules, so the parent package that
    Python imports first is not an edge: ``shared.port`` importing ``shared.port.api``,
    which imports ``shared.port.layers``, is no circle.
    """
    found = []
    modules, floors, lines = {}, {}, {}
    for module, imports in project.imports.items():
        for i in imports:
            target = project.resolve(i.target)
            if target is None or target == module:
                continue
            if i.at_import:
                modules.setdefault(module, set()).add(target)
                lines.setdefault((module, target), i.line)
            a, b = project.node_of(module), project.node_of(target)
            if a != b:
                floors.setdefault(a, set()).add(b)
                lines.setdefault((a, b), project.where(module, i.line))
    for part in _circles(modules):
        path = _cycle(modules, part)
        steps = " -> ".join(f"{b} (line {lines[a, b]})" for a, b in itertools.pairwise(path))
        where = project.where(path[0], lines[path[0], path[1]])
        found.append(f"{where}: module circle: {path[0]} -> {steps}")
    for part in _circles(floors):
        path = _cycle(floors, part)
        steps = " -> ".join(f"{b} ({lines[a, b]})" for a, b in itertools.pairwise(path))
        found.append(f"{lines[path[0], path[1]]}: floor circle: {path[0]} -> {steps}")
    return found


def engine_findings(project: Project) -> list[str]:
    found = []
    for module, imports in project.imports.items():
        home = module.split(".")[0]
        for i in imports:
            if home in project.engines:
                if i.top in project.engines and i.top != home:
                    what = f"engine {home} imports engine {i.top}"
                    found.append(project.finding(i, "engine", what))
                if _within(i.target, APP):
                    found.append(project.finding(i, "engine", f"engine {home} imports {APP}"))
            elif i.top in project.engines and not _within(module, APP):
                found.append(project.finding(i, "engine", f"{i.target} imported below {APP}"))
            elif i.top in project.engines and i.at_import:
                what = f"{i.target} imported when {module} is imported; import it in a function"
                found.append(project.finding(i, "engine", what))
        if home == "shared" and not _within(module, APP):
            found += [f"{project.where(module, line)}: engine: a module imported by a name made "
                      f"at run time, below {APP} (no reader can check it)"
                      for line in project.dynamic_imports(module)]
    return found


def framework_findings(project: Project) -> list[str]:
    found = []
    for module, imports in project.imports.items():
        engine = module.split(".")[0] in project.engines  # an engine runs its framework
        runs_one = any(_within(module, floor) for floor in FRAMEWORK_FLOORS) \
            or project.loads_engines(module)
        for i in imports:
            if i.top in FRAMEWORKS and not engine:
                if not runs_one:
                    what = (f"{i.top} imported outside the engines, port's readers, writers "
                            f"and runners, and the {APP} modules that load engines")
                    found.append(project.finding(i, "framework", what))
                elif i.at_import:
                    what = f"{i.top} imported when {module} is imported; import it in a function"
                    found.append(project.finding(i, "framework", what))
            elif i.top == ONNX_FORMAT and not _within(module, f"shared.{ONNX_FORMAT}"):
                # port's onnx reader and runner, named after the format they read and run
                if not (runs_one and module.rsplit(".", 1)[-1] == ONNX_FORMAT):
                    what = "onnx imported outside shared.onnx and port's onnx reader and runner"
                    found.append(project.finding(i, "onnx", what))
                elif i.at_import:
                    what = f"onnx imported when {module} is imported; import it in a function"
                    found.append(project.finding(i, "onnx", what))
    return found


def importing_tests_findings(project: Project) -> list[str]:
    return [project.finding(i, "tests", f"a package imports the test module {i.target}")
            for imports in project.imports.values() for i in imports if i.top == "tests"]


RULES = {
    "floors": floor_findings,
    "circles": circle_findings,
    "engines": engine_findings,
    "frameworks": framework_findings,
    "tests": importing_tests_findings,
}


@pytest.fixture(scope="module")
def installed() -> Project:
    return Project.installed()


@pytest.mark.parametrize("rule", RULES)
def test_the_installed_packages_keep_the_rule(installed, rule):
    findings = RULES[rule](installed)
    assert not findings, f"{len(findings)} broken ({rule}):\n" + "\n".join(findings)


def test_every_floor_of_shared_is_read(installed):
    """The walk found the floors and the engines, and read each floor's docstring."""
    assert {"shared.core", "shared.app", "shared.port.readers"} <= set(installed.floors)
    assert {"keras_impl", "torch_impl", "onnx_impl"} <= set(installed.engines)
    assert installed.may_import("shared.core") == set()
    assert "shared.core" in installed.may_import("shared.text")


def test_every_engine_imports_a_listed_framework(installed):
    """A new engine whose framework is not in FRAMEWORKS would escape the framework rule."""
    for engine in installed.engines:
        imported = {i.top for module, imports in installed.imports.items()
                    if _within(module, engine) for i in imports}
        assert imported & FRAMEWORKS, (
            f"{engine} imports none of FRAMEWORKS (tests/packages.py); add its framework "
            f"there (it imports {sorted(imported)})")


def test_discovery_finds_every_package_folder():
    """A folder with an __init__.py is in the wheel, so none is silently left out of it."""
    missing = packages.left_out()
    assert not missing, (
        f"package folders that pyproject.toml's discovery leaves out of the wheel: {missing} "
        f"(include = {packages.discovery().get('include')})")


def test_a_package_folder_left_out_is_seen(tmp_path):
    """A floor without its parent's __init__.py, or an engine not named *_impl, is left out."""
    for module in ("shared/__init__.py", "shared/core/__init__.py", "shared/core/config.py",
                   "shared/text/tokens/__init__.py", "shared/text/tokens/ids.py",
                   "tflite/__init__.py", "tflite/api.py", "mlx_impl/__init__.py",
                   "tests/support/__init__.py", "tests/support/grid.py"):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text("")
    assert packages.left_out(tmp_path) == ["shared/text/tokens", "tflite"]


# --- the checker on made-up projects: each rule must be able to fail -----------------------

def _project(**sources: str) -> Project:
    """A project of made-up modules: ``shared__core__x="..."`` is shared/core/x.py."""
    sources = {name.replace("__", "."): source for name, source in sources.items()}
    names = frozenset(sources)
    package_names = frozenset(n for n in names
                              if "." not in n or any(m.startswith(f"{n}.") for m in names))
    engines = tuple(sorted({n for n in names if "." not in n and n != "shared"}))
    return Project(sources, package_names, engines)


CORE = '"""Core.\n\nMay import: nothing of shared; NumPy.\n"""\n'
TEXT = '"""Text.\n\nMay import: shared.core; NumPy.\n"""\n'
APP_DOC = '"""App.\n\nMay import: every floor of shared, and the engines lazily.\n"""\n'
READERS = '"""Readers.\n\nMay import: shared.core, shared.port.\n"""\n'
CLEAN = dict(
    shared='"""Facade."""\nfrom shared.text.data import batches\n__version__ = "1"\n',
    shared__core=CORE, shared__core__config="import numpy as np\n",
    shared__core__tokens="from .config import np\n",
    shared__text=TEXT, shared__text__data="from shared.core import config\n",
    shared__app=APP_DOC,
    shared__app__cli=("from shared.text.data import batches\n"
                      "def main():\n    import keras_impl\n"),
    shared__port='"""Port.\n\nMay import: shared.core.\n"""\n',
    shared__port__layers="from shared.core.config import np\n",
    shared__port__api="from shared.port.readers import torch\n",  # a floor inside port
    shared__port__readers=READERS,
    shared__port__readers__torch="from ..layers import np\ndef read():\n    import torch\n",
    shared__port__readers__onnx="def read():\n    import onnx\n",
    keras_impl="import keras\nfrom shared import __version__\nfrom keras_impl import model\n",
    keras_impl__model="from keras import layers\n",
    torch_impl="import torch\nfrom shared.text import data\n",
)


def _all_findings(project: Project) -> list[str]:
    return [finding for rule in RULES.values() for finding in rule(project)]


def test_the_checker_passes_a_clean_project():
    assert _all_findings(_project(**CLEAN)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"shared__core__config": "from shared.text import data\n"},
         "shared/core/config.py:1: floor: shared.core imports shared.text.data"),
        ({"shared__text__data": "def f():\n    from ..app import cli\n"},
         "shared/text/data.py:2: floor: shared.text imports shared.app.cli"),
        ({"shared__text__data": "from shared import __version__\n"},
         "shared/text/data.py:1: facade: shared.text imports the facade shared"),
        ({"shared__port__readers": READERS.replace(", shared.port", "")},
         "shared/port/readers/torch.py:1: floor: shared.port.readers imports shared.port.layers"),
        ({"shared__text": '"""Text, with no line saying what it may import."""\n'},
         "shared/text/__init__.py:1: floor: its package docstring has no 'May import:' line"),
        ({"shared__text": '"""Text.\n\nMay import: shared.kore.\n"""\n'},
         "shared/text/__init__.py:1: floor: shared.text's 'May import:' names shared.kore"),
        ({"shared__core__config": "from shared.core.tokens import PAD\n"},
         "shared/core/config.py:1: module circle: shared.core.config -> shared.core.tokens"),
        ({"shared__core": CORE.replace("nothing of shared", "shared.text"),
          "shared__core__config": "def f():\n    from shared.text import data\n"},
         "shared/core/config.py:2: floor circle: shared.core -> shared.text"),
        ({"shared__text__data": "def f():\n    import keras_impl\n"},
         "shared/text/data.py:2: engine: keras_impl imported below shared.app"),
        ({"shared__text__data": "import importlib\nm = importlib.import_module('x_impl')\n"},
         "shared/text/data.py:2: engine: a module imported by a name made at run time"),
        ({"shared__app__cli": "import torch_impl\n"},
         "shared/app/cli.py:1: engine: torch_impl imported when shared.app.cli is imported"),
        ({"torch_impl": "import torch\nimport keras_impl\n"},
         "torch_impl/__init__.py:2: engine: engine torch_impl imports engine keras_impl"),
        ({"torch_impl": "import torch\nfrom shared.app import cli\n"},
         "torch_impl/__init__.py:2: engine: engine torch_impl imports shared.app"),
        ({"shared__text__data": "def f():\n    import torch\n"},
         "shared/text/data.py:2: framework: torch imported outside the engines"),
        ({"shared__port__readers__torch": "import torch\n"},
         "shared/port/readers/torch.py:1: framework: torch imported when"),
        ({"shared__app__cli": "import tensorflow\ndef main():\n    import keras_impl\n"},
         "shared/app/cli.py:1: framework: tensorflow imported when shared.app.cli"),
        ({"shared__app__cli": "def main():\n    import tensorflow\n"},
         "shared/app/cli.py:2: framework: tensorflow imported outside the engines"),
        ({"shared__port__readers__torch": "def read():\n    import onnx\n"},
         "shared/port/readers/torch.py:2: onnx: onnx imported outside shared.onnx"),
        ({"shared__port__readers__onnx": "from onnx import helper\n"},
         "shared/port/readers/onnx.py:1: onnx: onnx imported when"),
        ({"keras_impl__model": "import onnx\n"},
         "keras_impl/model.py:1: onnx: onnx imported outside shared.onnx"),
        ({"shared__text__data": "from tests.support import GRID\n"},
         "shared/text/data.py:1: tests: a package imports the test module tests.support"),
    ],
)
def test_the_checker_flags_a_planted_violation(change, expected):
    findings = _all_findings(_project(**{**CLEAN, **change}))
    assert any(finding.startswith(expected) for finding in findings), (
        f"expected a finding starting {expected!r}; found {findings}")


def test_a_lazy_import_and_a_type_only_import_make_no_module_circle():
    findings = circle_findings(_project(**{
        **CLEAN,
        "shared__core__config": "def f():\n    from shared.core.tokens import PAD\n",
        "shared__core__tokens": ("from typing import TYPE_CHECKING\n"
                                 "if TYPE_CHECKING:\n    from shared.core.config import X\n"
                                 "import shared.core.config\n"),
    }))
    assert findings == []


def test_imports_are_read_absolute_with_the_line_and_when_they_run():
    source = ("import numpy as np\nfrom . import tokens\nfrom ..text.data import batches\n"
              "def f():\n    from shared.core import config, missing\n")
    known = frozenset({"shared.core.tokens", "shared.core.config"})
    found = [(i.target, i.line, i.at_import)
             for i in packages.imports_in(source, "shared.core.checks", known=known)]
    assert found == [("numpy", 1, True), ("shared.core.tokens", 2, True),
                     ("shared.text.data", 3, True), ("shared.core.config", 5, False),
                     ("shared.core", 5, False)]
    in_package = packages.imports_in("from . import checks\n", "shared.core", is_package=True,
                                     known=frozenset({"shared.core.checks"}))
    assert [i.target for i in in_package] == ["shared.core.checks"]
