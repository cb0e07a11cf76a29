"""Every report figure is produced by code, listed, present, and known to the README."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"


def saved_by_notebooks() -> set[str]:
    names = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                         if c.cell_type == "code")
        names |= set(re.findall(r'save_figure\([^,]+,\s*"([^"]+)"', code))
    return names


def saved_by_make_reproduce() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"instclf\.app screenshot (?:--if-stale )?figures/(\w+)\.png", makefile))


def listed() -> set[str]:
    return set(re.findall(r"^\| (\d\d_\w+) \|", (FIGURES / "README.md").read_text(), re.M))


def test_every_listed_figure_is_produced_and_every_produced_one_listed():
    produced = saved_by_notebooks() | saved_by_make_reproduce()
    assert "07_prediction_page" in produced
    assert listed() == produced, (
        f"produced but not listed in figures/README.md: {sorted(produced - listed())}; "
        f"listed but produced by no notebook: {sorted(listed() - produced)}")


def test_the_figures_folder_holds_exactly_the_listed_figures():
    present = {path.stem for path in FIGURES.glob("*.png")}
    assert present == listed(), (f"stale files: {sorted(present - listed())}; "
                                 f"missing (run make reproduce): {sorted(listed() - present)}")


def test_every_figure_the_readme_embeds_is_produced():
    embedded = set(re.findall(r"\]\(figures/(\w+)\.png\)", (ROOT / "README.md").read_text()))
    assert embedded, "the README embeds no figure"
    assert embedded <= listed(), f"README embeds unknown figures: {sorted(embedded - listed())}"
