"""The stored teaching notebooks are clean and regenerable.

They must hold no outputs and be byte-for-byte what ``notebooks/build_notebooks.py`` writes, so a
review reads the generator and a diff never carries stale outputs. (Running them is
``pytest --nbmake notebooks``.)
"""

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _load_builder():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", NOTEBOOKS / "build_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _load_builder()
NAMES = sorted(BUILDER.NOTEBOOKS)


def test_every_stored_notebook_comes_from_the_generator():
    stored = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert stored == set(NAMES), "notebooks/ and build_notebooks.NOTEBOOKS list different files"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_no_outputs(name):
    cells = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]
    dirty = [
        cell["id"]
        for cell in cells
        if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None)
    ]
    assert not dirty, f"{name}: cells {dirty} hold outputs; rerun notebooks/build_notebooks.py"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_generator(name):
    stored = (NOTEBOOKS / name).read_text(encoding="utf-8")
    assert stored == BUILDER.render(name), (
        f"{name} differs from build_notebooks.py: edit the generator, then run "
        "`.venv/bin/python notebooks/build_notebooks.py`"
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_uses_the_python3_kernel_and_starts_with_a_title(name):
    notebook = BUILDER.build(name)
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")


@pytest.mark.parametrize("name", NAMES)
def test_training_notebooks_write_runs_to_a_temporary_folder(name):
    sources = "\n".join(
        cell.source for cell in BUILDER.build(name).cells if cell.cell_type == "code"
    )
    if "train(" in sources:
        assert "tempfile.mkdtemp(" in sources, f"{name} trains but not into a temporary folder"


def test_stale_lists_missing_and_edited_notebooks(tmp_path):
    first, *others = NAMES
    (tmp_path / first).write_text(BUILDER.render(first), encoding="utf-8")
    assert BUILDER.stale(tmp_path) == others
    (tmp_path / first).write_text(BUILDER.render(first).replace("#", "##", 1), encoding="utf-8")
    assert BUILDER.stale(tmp_path) == NAMES


def test_rebuilding_is_deterministic():
    assert all(BUILDER.render(name) == BUILDER.render(name) for name in NAMES)
