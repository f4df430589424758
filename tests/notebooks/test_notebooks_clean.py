"""The stored teaching notebooks are clean and generated from their sources.

Each notebook's source is ``notebooks/NN_name.py`` (jupytext's percent format, linted and formatted
by ruff); the ``.ipynb`` beside it is generated from it and stored without outputs, so a review
reads the ``.py`` and a diff never carries stale outputs. These tests fail when a stored ``.ipynb``
has outputs or holds other cells than its source (an edit not synced with
``jupytext --update --to ipynb``). Running them is ``pytest --nbmake notebooks``.
"""

import json
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
NAMES = [source.stem for source in SOURCES]
REGENERATE = ".venv/bin/jupytext --update --to ipynb notebooks/{name}.py"


def differences(source: Path, stored: Path) -> list[str]:
    """What differs between the notebook that ``source`` (a percent ``.py``) generates and the
    stored ``.ipynb``: one line per differing cell, kernel or cell count; empty when it is fresh."""
    expected = jupytext.read(source)
    actual = nbformat.read(stored, as_version=4)
    found = []
    if expected.metadata.get("kernelspec") != actual.metadata.get("kernelspec"):
        found.append("the kernelspec differs")
    if len(expected.cells) != len(actual.cells):
        found.append(f"{len(expected.cells)} cells in the source, {len(actual.cells)} stored")
    for index, (want, have) in enumerate(zip(expected.cells, actual.cells, strict=False)):
        if (want.cell_type, want.source) != (have.cell_type, have.source):
            found.append(f"cell {index} ({have.get('id', '?')}) differs")
    return found


def test_every_notebook_has_its_source():
    stored = {path.stem for path in NOTEBOOKS.glob("*.ipynb")}
    assert NAMES, "no notebook sources in notebooks/"
    assert stored == set(NAMES), "notebooks/ holds an .ipynb without its .py source, or the reverse"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_no_outputs(name):
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    dirty = [
        cell["id"]
        for cell in cells
        if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None)
    ]
    assert not dirty, (
        f"{name}.ipynb: cells {dirty} hold outputs; run {REGENERATE.format(name=name)}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_source(name):
    found = differences(NOTEBOOKS / f"{name}.py", NOTEBOOKS / f"{name}.ipynb")
    assert not found, (
        f"{name}.ipynb is stale against {name}.py ({'; '.join(found)}): edit the .py, then run "
        + REGENERATE.format(name=name)
    )


def test_an_edited_source_makes_its_notebook_stale(tmp_path):
    source = (NOTEBOOKS / f"{NAMES[0]}.py").read_text(encoding="utf-8")
    edited, stored = tmp_path / "edited.py", tmp_path / "stored.ipynb"
    edited.write_text(source, encoding="utf-8")
    jupytext.write(jupytext.read(edited), stored)
    assert differences(edited, stored) == []
    edited.write_text(source.replace("# %% [markdown]\n# #", "# %% [markdown]\n# ##", 1))
    assert differences(edited, stored) == [
        f"cell 0 ({nbformat.read(stored, 4).cells[0].id}) differs"
    ]
    edited.write_text(source + "\n# %%\nprint('a new cell')\n", encoding="utf-8")
    assert differences(edited, stored)[0].endswith("stored")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_uses_the_python3_kernel_and_starts_with_a_title(name):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")


@pytest.mark.parametrize("name", NAMES)
def test_training_notebooks_write_runs_to_a_temporary_folder(name):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    sources = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    if "train(" in sources:
        assert "tempfile.mkdtemp(" in sources, f"{name} trains but not into a temporary folder"
