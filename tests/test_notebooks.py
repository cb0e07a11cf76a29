"""Structure of the committed notebooks: the skeleton ARCHITECTURE.md describes and no stored outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_notebooks_exist_with_numbered_names():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} stores outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_skeleton(path):
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    number = path.name[:2]
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {number} ")
    assert "What you will learn" in cells[0].source
    setup = cells[1]
    assert setup.cell_type == "code" and "import instclf as ic" in setup.source
    assert "ic.setup(" in setup.source
    headings = [line for c in cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert "## Summary" in headings and "## What's next" in headings
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert "sys.path" not in code and "pip install" not in code
    assert "assert " in code, "a notebook checks its invariants with assert cells"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_saved_under_the_notebook_number(path):
    notebook = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    names = re.findall(r'save_figure\([^,]+,\s*f?"([^"]+)"', code)
    assert "savefig" not in code.replace("save_figure", "")
    for name in names:
        assert name.startswith(path.name[:3]), f"{name} in {path.name}"
