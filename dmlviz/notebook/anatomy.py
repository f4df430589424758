"""The loss anatomy as a notebook widget: one slider per hyperparameter of the loss, and the
heatmaps of ``loss.explain(...)`` on a small batch redrawn as a slider moves; for the contextual
loss, a step slider through N → A → B → W̃ → R → Ŵ → W. The figures are the ones the dashboard's
Anatomy page draws (``dmlviz.views.anatomy``)."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from dmlviz.notebook._view import View, draw, figure_html
from dmlviz.runs import Run
from dmlviz.views import anatomy as views
from dmlviz.views.embedding_map import class_names_of


def _slider(param: views.Param, value: float) -> widgets.Widget:
    kind = widgets.IntSlider if param.integer else widgets.FloatSlider
    return kind(
        value=value, min=param.low, max=param.high, step=param.step, description=param.name,
        description_tooltip=param.help, continuous_update=False,
        style={"description_width": "initial"},
    )  # fmt: skip


class Anatomy(View):
    """``loss`` explained on the batch ``embeddings`` / ``labels`` (axis labels ``ticks``):
    ``set(name=value, ...)`` moves sliders as a student would; ``explained`` holds the current
    ``explain()`` result and ``figures`` the drawn panels."""

    def __init__(
        self,
        loss: str,
        embeddings: np.ndarray,
        labels: np.ndarray,
        ticks: list[str],
        params: dict | None = None,
        panels: tuple[str, ...] | None = None,
    ):
        if loss not in views.EXPLAINED_LOSSES:
            raise ValueError(
                f"the anatomy explains {', '.join(views.EXPLAINED_LOSSES)}, not {loss!r}"
            )
        self.loss, self.embeddings, self.labels, self.ticks = loss, embeddings, labels, ticks
        defaults = views.default_params(loss, params)
        self.sliders = {p.name: _slider(p, defaults[p.name]) for p in views.PARAMS[loss]}
        self.shown = panels
        self.explained = views.explain(loss, self.params(), embeddings, labels)
        drawn = self._panels()
        self.figures = [p.figure for p in drawn]
        self.outputs = [widgets.Output() for _ in drawn]
        self.captions = [widgets.HTML(self._caption(p)) for p in drawn]
        for output, figure in zip(self.outputs, self.figures, strict=True):
            draw(output, figure)
        self.terms = widgets.HTML(self._terms())
        parts = [widgets.VBox(pair) for pair in zip(self.outputs, self.captions, strict=True)]
        self.step = self.step_figure = self.step_caption = None
        extra = []
        if loss == "contextual":
            self.step = widgets.IntSlider(
                value=len(views.CONTEXTUAL_STEPS) - 1, min=0, max=len(views.CONTEXTUAL_STEPS) - 1,
                description="step", continuous_update=True,
            )  # fmt: skip
            self.step_output, self.step_caption = widgets.Output(), widgets.HTML()
            self._draw_step()
            self.step.observe(lambda _: self._draw_step(), names="value")
            extra = [widgets.HTML("<b>The contextual similarity, step by step</b>"), self.step,
                     self.step_output, self.step_caption]  # fmt: skip
        for slider in self.sliders.values():
            slider.observe(lambda _: self.redraw(), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(list(self.sliders.values()), layout=widgets.Layout(flex_flow="row wrap")),
             self.terms, widgets.GridBox(parts, layout=widgets.Layout(
                 grid_template_columns="repeat(2, minmax(320px, 1fr))")), *extra]
        )  # fmt: skip

    def params(self) -> dict[str, float]:
        """The sliders' current values, as ``build(loss, **params)`` takes them."""
        return {name: slider.value for name, slider in self.sliders.items()}

    def set(self, **values: float) -> None:
        """Move the named sliders (each redraws)."""
        for name, value in values.items():
            self.sliders[name].value = value

    def _panels(self) -> list[views.Panel]:
        drawn = views.panels(self.loss, self.explained, self.ticks)
        return [p for p in drawn if self.shown is None or p.title in self.shown]

    @staticmethod
    def _caption(panel: views.Panel) -> str:
        return f"<div style='font-size:12px;color:#555;max-width:440px'>{panel.caption}</div>"

    def _terms(self) -> str:
        terms = views.loss_terms(self.loss, self.explained)
        return " · ".join(f"{name} <b>{value:.4g}</b>" for name, value in terms.items())

    def redraw(self) -> None:
        """Explain the batch with the sliders' values and redraw every panel in place."""
        self.explained = views.explain(self.loss, self.params(), self.embeddings, self.labels)
        self.figures = [panel.figure for panel in self._panels()]
        for output, figure in zip(self.outputs, self.figures, strict=True):
            draw(output, figure)
        self.terms.value = self._terms()
        if self.step is not None:
            self._draw_step()

    def _draw_step(self) -> None:
        panel = views.contextual_step(self.explained, self.step.value, self.ticks)
        self.step_figure = panel.figure
        draw(self.step_output, panel.figure)
        self.step_caption.value = self._caption(panel)

    def static_html(self) -> str:
        figures = [*self.figures, *([self.step_figure] if self.step_figure is not None else [])]
        return (
            f"<p>{self._terms()}</p><p>{', '.join(f'{k} = {v:.3g}' for k, v in self.params().items())}</p>"
            + "".join(figure_html(figure) for figure in figures)
        )


def anatomy(
    source,
    loss: str | None = None,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    split: str = "train",
    classes: int = 4,
    per_class: int = 4,
    seed: int = 0,
    panels: tuple[str, ...] | None = None,
) -> Anatomy:
    """The anatomy widget of ``loss`` on a batch: ``source`` is an ``(n, d)`` array of embeddings
    with ``labels``, or a ``Run``, from whose ``split`` a seeded m-per-class batch of ``classes`` x
    ``per_class`` samples is drawn (``draw_batch``) and whose loss and settings are the default.
    ``panels`` limits the drawn panels to those titles."""
    params = None
    if isinstance(source, Run):
        loss = loss or source.config.get("loss")
        params = source.config.get("loss_kwargs")
        embeddings, all_labels = source.embeddings(split)
        batch = views.draw_batch(all_labels, classes, per_class, seed)
        try:
            names = list(source.dataset(split).class_names)
        except (OSError, ValueError, RuntimeError):
            names = None
        noisy = source.labels() if split == "train" else None
        flipped = None if noisy is None else np.asarray(noisy.flipped)[batch]
        observed = all_labels if noisy is None else np.asarray(noisy.observed)
        ticks = views.tick_labels(batch, class_names_of(observed[batch], names), flipped)
        return Anatomy(loss, embeddings[batch], observed[batch], ticks, params, panels)
    if loss is None or labels is None:
        raise ValueError("give the loss and the labels of the embeddings, or a run")
    embeddings = np.asarray(source, dtype=np.float32)
    ticks = views.tick_labels(
        np.arange(len(labels)), class_names_of(np.asarray(labels), class_names)
    )
    return Anatomy(loss, embeddings, np.asarray(labels), ticks, params, panels)
