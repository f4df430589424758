"""dmlviz in Jupyter: the dashboard's main views as widgets over the same ``dmlviz.views``
functions, and the checks of the teaching notebooks' exercises.

    from dmlviz import notebook
    notebook.use_offline_figures()   # figures that survive `jupyter nbconvert --to html`
    notebook.lens(run)               # embedding map linked to the query lens
    notebook.worst_queries(run)
    notebook.ap_at_r(run)            # a query's AP@R, place by place
    notebook.anatomy(run)            # or anatomy(embeddings, "rll", labels)
    notebook.consistency(runs)       # pick the run behind the histogram
    notebook.replay({"rll": run_a, "contextual": run_b})

Built on ipywidgets and plotly's ``FigureWidget`` (an anywidget): each view's output also
carries a static picture of itself, shown where no kernel draws the widget.
"""

from dmlviz.notebook import check
from dmlviz.notebook._view import RENDERER, figure_html, use_offline_figures
from dmlviz.notebook.anatomy import Anatomy, anatomy
from dmlviz.notebook.consistency import Consistency, consistency
from dmlviz.notebook.lens import APatR, Lens, ap_at_r, lens, worst_queries
from dmlviz.notebook.replay import Replay, replay

__all__ = [
    "RENDERER",
    "APatR",
    "Anatomy",
    "Consistency",
    "Lens",
    "Replay",
    "anatomy",
    "ap_at_r",
    "check",
    "consistency",
    "figure_html",
    "lens",
    "replay",
    "use_offline_figures",
    "worst_queries",
]
