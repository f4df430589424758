"""What every notebook widget shares: the plotly renderer that survives an HTML export, and a
view shown twice: a static picture, and the live widget, which hides the picture once a
frontend draws it. Where nothing draws widgets (an offline HTML export, a code host, a notebook
reopened without its kernel) the picture stays."""

from __future__ import annotations

import html
from abc import ABC, abstractmethod
from collections.abc import Iterable

import anywidget
import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import HTML, display

from dmlviz.runs import Run

# "plotly_mimetype" draws figures in JupyterLab (its plotly extension); "notebook" adds a
# text/html copy that embeds plotly.js once per notebook, which `jupyter nbconvert --to html`
# keeps and which draws offline. ("notebook_connected" would fetch plotly.js from a CDN.)
RENDERER = "plotly_mimetype+notebook"
STATIC_CLASS = "dmlviz-static"  # the static picture's element, hidden by a drawn widget


def labelled_runs(runs: Run | dict[str, Run] | Iterable[Run]) -> dict[str, Run]:
    """One ``Run``, a dict label -> Run, or several runs, as a dict label -> Run (labels: the
    runs' names)."""
    if isinstance(runs, Run):
        return {runs.name: runs}
    if isinstance(runs, dict):
        return runs
    return {run.name: run for run in runs}


def use_offline_figures() -> None:
    """Make every figure of this kernel keep an offline HTML copy (``RENDERER``), and put
    plotly.js into this cell's output now, once, for those copies and the widgets' pictures."""
    pio.renderers.default = RENDERER
    # plotly queues the "notebook" renderer's one-time plotly.js output for the first figure
    # shown; doing it here puts it before any widget's static picture, which needs it too.
    pio.renderers._activate_pending_renderers()


def figure_html(figure: go.Figure) -> str:
    """``figure`` as an HTML fragment: the "notebook" renderer's (using the page's one copy of
    plotly.js) under ``RENDERER``, else a fragment that embeds plotly.js."""
    if "notebook" in pio.renderers.default.split("+"):
        return pio.renderers["notebook"].to_mimebundle(figure.to_dict())["text/html"]
    return go.Figure(figure).to_html(full_html=False, include_plotlyjs=True)


def draw(output: widgets.Output, figure: go.Figure) -> None:
    """Show ``figure`` in ``output``, replacing what it showed: the figure's JSON goes to
    JupyterLab's plotly renderer (a ``FigureWidget`` instead would ship its own copy of plotly.js,
    about 4.6 MB, with every figure)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())
    output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class HideStatic(anywidget.AnyWidget):
    """An empty widget whose drawing hides the static pictures of its cell's output."""

    _esm = f"""
    function render({{ el }}) {{
      const area = el.closest(".jp-OutputArea, .output, .cell") || document;
      for (const node of area.querySelectorAll(".{STATIC_CLASS}")) node.style.display = "none";
    }}
    export default {{ render }};
    """


class View(ABC):
    """A notebook view: ``widget`` (an ipywidgets box) under a kernel, after ``static_html()``,
    the same view drawn as it stands, for wherever no kernel draws the widget."""

    widget = None

    @abstractmethod
    def static_html(self) -> str:
        """The view as it stands, as HTML with its figures drawn."""

    def _ipython_display_(self) -> None:
        note = "A static picture: run the notebook in Jupyter to use the controls."
        display(
            HTML(
                f"<div class='{STATIC_CLASS}'><p style='color:#777'>{html.escape(note)}</p>"
                f"{self.static_html()}</div>"
            )
        )
        display(self.widget)
        display(HideStatic())
