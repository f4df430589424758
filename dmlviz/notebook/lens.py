"""The query lens as a notebook widget: the embedding map, whose click picks the query, beside
the query's ranked list (thumbnails, ✓/✗ by clean label, ⚠ where a training label was flipped),
and the worst queries to pick from. Every step is a ``dmlviz.views`` function, the ones the
dashboard's Lens and Map pages call."""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from dmlviz.notebook._view import View, draw, figure_html
from dmlviz.runs import Run
from dmlviz.views import data as views_data
from dmlviz.views.embedding_map import class_names_of, map_figure
from dmlviz.views.lens import (
    LENS_CSS,
    ap_at_r_figure,
    ap_at_r_steps,
    live_ranking,
    query_card_html,
    ranked_list,
    ranked_strip_html,
    stored_ranking,
    summary_line,
)
from dmlviz.views.thumbs import ThumbnailCache

WORST_SHOWN = 10  # queries listed in the worst-queries picker
QUERY_TRACE, NEIGHBOUR_TRACE = "lens query", "its top-K neighbours"  # map_figure's lens traces


def _dataset_or_none(run: Run, split: str):
    try:
        return run.dataset(split)
    except (OSError, ValueError, RuntimeError):
        return None  # data not on this machine: names and thumbnails fall back to placeholders


class Lens(View):
    """One split of one run: ``select(query)`` redraws the ranked list and the map's star and
    rings; a click on a map point selects it. ``with_map=False`` leaves the map out (the worst
    queries alone)."""

    def __init__(self, run: Run, split: str = "test", k: int = 10, with_map: bool = True):
        data = views_data.load_split(run, split)
        if data.neighbours is None:
            raise ValueError(data.problems[0])
        self.run, self.split, self.k, self.data = run, split, k, data
        dataset = _dataset_or_none(run, split)
        self.names = views_data.class_names_or_none(dataset)
        self.thumbs = ThumbnailCache(dataset)
        reference = data.reference_split
        self.ref_thumbs = (
            self.thumbs if reference == split else ThumbnailCache(_dataset_or_none(run, reference))
        )
        per_query = data.per_query.sort_values(["ap@r", "first_correct_rank"], kind="stable")
        self.worst = per_query["query"].head(WORST_SHOWN).astype(int).tolist()
        self.query = self.worst[0]
        self.picker = widgets.Dropdown(
            options=[(self._worst_label(q), q) for q in self.worst],
            value=self.query,
            description="worst queries",
            style={"description_width": "initial"},
        )
        self.number = widgets.BoundedIntText(
            value=self.query, min=0, max=len(data.labels) - 1, description="query #"
        )
        self.panel = widgets.HTML()
        self.figure = None
        if with_map and reference == split:
            self.figure = go.FigureWidget(self._map())
            for trace in self.figure.data:
                if (
                    trace.name not in (QUERY_TRACE, NEIGHBOUR_TRACE)
                    and trace.customdata is not None
                ):
                    trace.on_click(self._clicked)
        self.picker.observe(lambda change: self.select(change["new"]), names="value")
        self.number.observe(lambda change: self.select(change["new"]), names="value")
        controls = widgets.HBox([self.picker, self.number])
        parts = (
            [controls, self.figure, self.panel]
            if self.figure is not None
            else [controls, self.panel]
        )
        self.widget = widgets.VBox(parts)
        self.select(self.query)

    def _worst_label(self, query: int) -> str:
        stats = stored_ranking(
            query, self.data.neighbours, self.data.similarities, self.data.per_query
        ).stats
        return f"#{query} {self._class(self.data.labels[query])}: AP@R {stats['ap@r']:.2f}"

    def _class(self, label) -> str:
        return str(class_names_of(np.array([label]), self.names)[0])

    def _map(self) -> go.Figure:
        """The stored map of the split (UMAP, else PCA), or a PCA made now and cached in the run."""
        methods = views_data.map_methods(self.run, self.split)
        if not methods:
            from dmlviz.project import project_run

            project_run(self.run, splits=(self.split,), methods=("pca",))
            methods = ["pca"]
        self.frame, _ = views_data.load_map(self.run, self.split, methods[0], self.data, self.names)
        color = "flipped" if "flipped" in self.frame and self.frame["flipped"].any() else "label"
        figure = map_figure(
            self.frame, color, self.query, self._neighbours(self.query), height=460,
            title=f"{self.run.name}: {methods[0].upper()} map of the {self.split} split (click a point)",
        )  # fmt: skip
        figure.update_layout(dragmode="pan")
        return figure

    def _neighbours(self, query: int) -> list[int]:
        return [int(i) for i in self.data.neighbours[query, : self.k] if i >= 0]

    def _clicked(self, trace, points, _state) -> None:
        if points.point_inds:
            self.select(int(trace.customdata[points.point_inds[0]][0]))

    def select(self, query: int) -> None:
        """Make sample ``query`` the lens's query: its ranked list, and its star on the map."""
        query = int(query)
        self.query = query
        d = self.data
        ranking = stored_ranking(query, d.neighbours, d.similarities, d.per_query)
        ranked = ranked_list(ranking, d.labels, self.names, d.observed, self.k, d.reference_labels)
        observed = None if d.observed is None else self._class(d.observed[query])
        stats = ranking.stats
        ap = "-" if math.isnan(stats["ap@r"]) else f"{stats['ap@r']:.3f}"
        self.panel.value = (
            LENS_CSS
            + "<div style='display:flex;gap:12px;align-items:flex-start'>"
            + query_card_html(self.thumbs(query), query, self._class(d.labels[query]), observed)
            + f"<div><b>AP@R {ap}</b> · {int(ranked['correct'].sum())} of the top "
            + f"{len(ranked)} correct. {summary_line(stats)}"
            + ranked_strip_html(ranked, self.ref_thumbs.many(ranked["index"]))
            + "</div></div>"
        )
        if self.number.value != query:
            self.number.value = query
        if self.figure is not None:
            rows = self.frame.iloc[self._neighbours(query)]
            with self.figure.batch_update():
                for trace in self.figure.data:
                    if trace.name == QUERY_TRACE:
                        trace.x, trace.y = (
                            [self.frame["x"].iat[query]],
                            [self.frame["y"].iat[query]],
                        )
                        trace.customdata = [[query]]
                    elif trace.name == NEIGHBOUR_TRACE:
                        trace.x, trace.y = rows["x"].to_numpy(), rows["y"].to_numpy()
                        trace.customdata = rows[["index"]].to_numpy()

    def static_html(self) -> str:
        figure = "" if self.figure is None else figure_html(self.figure)
        return figure + self.panel.value


def lens(run: Run, split: str = "test", k: int = 10) -> Lens:
    """The embedding map of ``run``'s ``split`` linked to the query lens; the worst query first."""
    return Lens(run, split, k)


def worst_queries(run: Run, split: str = "test", k: int = 10) -> Lens:
    """The ``WORST_SHOWN`` queries with the lowest AP@R, one ranked list at a time."""
    return Lens(run, split, k, with_map=False)


class APatR(View):
    """One query's AP@R computed in front of the student: pick a query, see P(i) at each of its
    first R places and the running sum that ends at its AP@R."""

    def __init__(self, run: Run, split: str = "test"):
        self.embeddings, self.labels = run.embeddings(split)
        per_query = run.per_query(split).sort_values("ap@r", kind="stable")
        self.stored = per_query.set_index("query")["ap@r"]
        picks = per_query["query"].iloc[np.linspace(0, len(per_query) - 1, 12).astype(int)]
        self.picker = widgets.Dropdown(
            options=[(f"#{q}: stored AP@R {self.stored[q]:.3f}", int(q)) for q in picks],
            description="query",
        )
        self.output, self.text = widgets.Output(), widgets.HTML()
        self.picker.observe(lambda change: self.select(change["new"]), names="value")
        self.widget = widgets.VBox([self.picker, self.text, self.output])
        self.select(self.picker.value)

    def select(self, query: int) -> None:
        """Rank ``query`` against its split now and draw its AP@R place by place."""
        self.query = int(query)
        r = int((self.labels == self.labels[query]).sum() - 1)
        ranking = live_ranking(self.embeddings, self.labels, query, top_k=r)
        correct = self.labels[ranking.neighbours] == self.labels[query]
        self.steps = ap_at_r_steps(correct, r)
        self.figure = ap_at_r_figure(self.steps, f"query #{query}: R = {r}")
        draw(self.output, self.figure)
        self.text.value = (
            f"{int(self.steps['correct'].sum())} of the first R = {r} results are correct; "
            f"AP@R = Σ P(i)·rel(i) / R = <b>{self.steps['term'].sum():.3f}</b> "
            f"(the run's evaluation: {self.stored[self.query]:.3f})"
        )

    def static_html(self) -> str:
        return f"<p>{self.text.value}</p>{figure_html(self.figure)}"


def ap_at_r(run: Run, split: str = "test") -> APatR:
    """A query picker (from the worst to the best AP@R) over ``run``'s ``split``, drawing how the
    picked query's AP@R adds up."""
    return APatR(run, split)
