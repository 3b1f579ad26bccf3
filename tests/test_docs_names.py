"""Every name of this project that the README and docs/ show a user still exists.

The examples in docs/examples/ run (test_docs_examples.py); the prose and its code
blocks name modules and functions too (``shared.layout.random_weights``, ``from
shared.checkpoint import load_checkpoint``), and a rename that forgets one leaves a
reader with an ImportError.  So every name of the project's packages that the pages
write is resolved here: each ``import`` / ``from ... import`` in a ```python block,
and each dotted name in backticks (``shared.x.y``), imported module by module and
then looked up attribute by attribute.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from tests.packages import packages

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOPS = sorted({package.split(".")[0] for package in packages()})
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
# A dotted name at the start of an inline code span: `shared.x.y`, `shared.x.y(...)`.
DOTTED = re.compile(r"`(?P<name>(?:" + "|".join(TOPS) + r")(?:\.\w+)+)(?=[`(\[ ,])")


def resolve(dotted: str) -> None:
    """Import the longest module prefix of ``dotted``, then look up the rest as attributes.

    Raises:
        AssertionError: naming the part that is missing.
    """
    parts = dotted.split(".")
    module, found = None, 0
    for end in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError as error:
            if error.name is not None and not dotted.startswith(error.name):
                pytest.skip(f"{dotted} needs {error.name}, which is not installed")
            continue
        found = end
        break
    assert module is not None, f"no module of {dotted} can be imported"
    value = module
    for attribute in parts[found:]:
        assert hasattr(value, attribute), f"{'.'.join(parts[:found])} has no {attribute!r}"
        value = getattr(value, attribute)
        found += 1


def names_on(page: Path) -> list[str]:
    """The project's dotted names a page shows: imports in code blocks, names in backticks."""
    text = page.read_text()
    names = [match["name"] for match in DOTTED.finditer(text)]
    for block in BLOCK.findall(text):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in TOPS:
                    names += [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names += [alias.name for alias in node.names if alias.name.split(".")[0] in TOPS]
    return sorted(set(names))


def test_the_pages_name_the_project_at_all():
    """The scan finds names: a regex that matched nothing would pass every page."""
    found = {page.name: names_on(page) for page in PAGES}
    assert "shared.layout.random_weights" in found["README.md"]
    assert "shared.checkpoint.load_checkpoint" in found["README.md"]
    assert "keras_impl.load_ported" in found["porting.md"], found["porting.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_name_a_page_shows_exists(page):
    missing = []
    for name in names_on(page):
        try:
            resolve(name)
        except AssertionError as error:
            missing.append(f"{name}: {error}")
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"


def test_a_missing_name_is_caught():
    """The check can fail: a renamed function and a moved module are both reported."""
    with pytest.raises(AssertionError, match="has no 'random_weight'"):
        resolve("shared.layout.random_weight")
    with pytest.raises(AssertionError, match="has no 'gru_gates'"):
        resolve("shared.gru_gates")
