"""The documentation's examples run, and its links lead somewhere.

Each ``docs/examples/*.py`` asserts what it shows, so running it is its test.
They run in this process (``runpy``), not in subprocesses: a new process would
import TensorFlow again, seconds each.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from shared.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))

# Every page whose links this test checks, each with the folder its links start from.
PAGES = {"README.md": ROOT, **{f"docs/{page.name}": DOCS for page in sorted(DOCS.glob("*.md"))}}
# [text](target#anchor): the file part and the anchor part of a link.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s#]*)(?:#([^)\s]*))?\)")


def test_the_documented_examples_exist():
    names = {path.stem for path in EXAMPLES}
    for name in ("01_initial_state_keras", "02_initial_state_torch", "03_gate_reorder",
                 "04_port_keras_layer_to_torch", "05_one_to_many", "06_handoff_h_and_c",
                 "07_keras_io_char_seq2seq_port", "08_safe_loading",
                 "09_initial_state_mask_trap", "10_training_differences"):
        assert name in names, f"docs/examples/{name}.py is missing"


# An example that cannot check everything it shows here (a framework piece missing from
# this install) says so on a line of its own, and the test reports it as skipped.
SKIPPED = re.compile(r"^SKIPPED: (.+)$", flags=re.MULTILINE)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_and_its_asserts_hold(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing"
    skipped = SKIPPED.findall(out)
    if skipped:
        pytest.skip(f"{path.name} ran, but skipped a check: {'; '.join(skipped)}")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, - for spaces."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES)
def test_page_links_only_to_files_and_headings_that_exist(page):
    source = ROOT / page
    broken = []
    for target, anchor in LINK.findall(source.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path = PAGES[page] / target if target else source
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{page} links to missing files or headings: {broken}"


def test_every_example_is_referenced_from_a_page():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    unreferenced = [p.name for p in EXAMPLES if f"examples/{p.name}" not in pages]
    assert not unreferenced, f"no docs page mentions {unreferenced}"


def test_porting_page_shows_the_copy_lstm_that_example_04_runs():
    page = (DOCS / "porting.md").read_text(encoding="utf-8")
    shown = re.search(r"^def copy_lstm.*?(?=^```)", page, flags=re.MULTILINE | re.DOTALL)
    assert shown, "docs/porting.md no longer shows copy_lstm"
    example = (DOCS / "examples" / "04_port_keras_layer_to_torch.py").read_text(encoding="utf-8")
    assert shown.group(0) in example, "porting.md's copy_lstm differs from example 04's"


@pytest.mark.parametrize("backend", ["keras_impl", "torch_impl"])
def test_readme_quickstart_runs_on_either_backend(backend, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, flags=re.DOTALL).group(1)
    assert "import keras_impl as backend" in code
    script = tmp_path / "quickstart.py"
    script.write_text(code.replace("keras_impl as backend", f"{backend} as backend"))
    namespace = runpy.run_path(str(script))
    assert namespace["h"].shape == (2, 2, 32) and namespace["tokens"].shape == (2, 10)


def test_training_page_python_runs(tmp_path, monkeypatch, capsys):
    """docs/training.md's Python block: a run moved from PyTorch to Keras, scored."""
    page = (DOCS / "training.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)  # it writes run.safetensors
    script = tmp_path / "training_page.py"
    script.write_text(code, encoding="utf-8")
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.startswith("held-out loss ")
    assert load_checkpoint(tmp_path / "run.safetensors").training.optimizer.step == 2 * 4
