"""Neighbour consistency as a notebook widget: pick a run (say loss × noise rate × seed) and see
the histogram of its kept and flipped labels' consistency, the detector's ROC and its most
suspicious training images: the figures of the dashboard's Consistency page
(``dmlviz.views.consistency``)."""

from __future__ import annotations

import ipywidgets as widgets

from dmlviz.notebook._view import View, draw, figure_html, labelled_runs
from dmlviz.runs import Run
from dmlviz.views.consistency import (
    consistency_histogram,
    detector_roc,
    suspicious_gallery_html,
    suspicious_samples,
)
from dmlviz.views.lens import LENS_CSS
from dmlviz.views.thumbs import ThumbnailCache

SUSPECTS_SHOWN = 12


class Consistency(View):
    """``runs`` (label -> Run, each evaluated with a train split); ``select(label)`` shows one."""

    def __init__(self, runs: dict[str, Run]):
        missing = [label for label, run in runs.items() if run.consistency() is None]
        if missing:
            raise ValueError(f"no neighbour consistency in {', '.join(missing)}: run evaluate_run")
        self.runs = runs
        self.picker = widgets.Dropdown(options=list(runs), description="run")
        self.histogram, self.roc = widgets.Output(), widgets.Output()
        self.suspects = widgets.HTML()
        self.picker.observe(lambda change: self.select(change["new"]), names="value")
        self.widget = widgets.VBox(
            [self.picker, widgets.HBox([self.histogram, self.roc]), self.suspects]
        )
        self.select(self.picker.value)

    def select(self, label: str) -> None:
        """Show run ``label``'s consistency."""
        self.label = label
        run = self.runs[label]
        summary, per_sample = run.consistency()
        self.figures = [consistency_histogram(per_sample, summary.get("k"))]
        roc, self.auroc = detector_roc(per_sample)
        self.figures.append(roc)
        for output, figure in zip((self.histogram, self.roc), self.figures, strict=True):
            figure.update_layout(width=520, height=380)
            draw(output, figure)
        names = list(run.dataset("train").class_names)
        table = suspicious_samples(per_sample, names, SUSPECTS_SHOWN)
        thumbs = ThumbnailCache(run.dataset("train")).many(table["index"])
        clean_known = run.config.get("noise_rate") is not None  # None: imported, no clean labels
        self.suspects.value = (
            f"{LENS_CSS}<b>{label}: the {SUSPECTS_SHOWN} most suspicious training labels</b>"
            f"{suspicious_gallery_html(table, thumbs, clean_known)}"
        )

    def static_html(self) -> str:
        return "".join(figure_html(f) for f in self.figures) + self.suspects.value


def consistency(runs) -> Consistency:
    """The consistency widget over one ``Run`` or several (a dict label -> Run, or a list)."""
    return Consistency(labelled_runs(runs))
