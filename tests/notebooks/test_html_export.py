"""An HTML copy of a notebook (`jupyter nbconvert --to html --execute`) keeps every figure, with
plotly.js inside so that it draws offline, and each widget's static picture; and every teaching
notebook asks for that renderer before its first figure."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(Path(__file__).resolve().parents[2].glob("notebooks/0*.py"))
FIGURE = re.compile(r'<div class="plotly-graph-div" id=')
CELLS = [
    "from dmlviz import notebook\nnotebook.use_offline_figures()\nimport plotly.express as px",
    "px.scatter(x=[1, 2, 3], y=[3, 1, 2]).show()",
    "px.bar(x=['a', 'b'], y=[1, 2])",  # a figure as a cell's value
    "import numpy as np\nangles = np.array([0.0, 0.4, 0.8, 2.0, 2.4, 2.8])\n"
    "notebook.anatomy(np.stack([np.cos(angles), np.sin(angles)], 1), 'rll',"
    " np.array([0, 0, 0, 1, 1, 1]), panels=('Active pairs',))",
]


def figures_in(html: str) -> int:
    """How many plotly figures an exported page draws."""
    return len(FIGURE.findall(html))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_the_offline_renderer_before_its_first_figure(path):
    source = path.read_text()
    call = source.find("notebook.use_offline_figures()")
    assert call >= 0, f"{path.name} never calls notebook.use_offline_figures()"
    first_figure = source.find(".show()")
    assert first_figure < 0 or call < first_figure, f"{path.name} shows a figure before it"


def test_exported_html_keeps_every_figure(tmp_path):
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExecutePreprocessor

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    ExecutePreprocessor(timeout=120, kernel_name="python3").preprocess(
        notebook, {"metadata": {"path": str(tmp_path)}}
    )
    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert figures_in(html) == 3, "a figure or the widget's static picture is missing"
    assert "plotly.js v" in html  # the library itself, not a CDN link: draws offline
    assert "dmlviz-static" in html
