"""The training replay as a notebook widget: one epoch slider with a play button for one or more
runs, moving the marker on the replay curves, each run's aligned probe map (where ``dmlviz
project`` made it) and the numbers of that snapshot. Figures and numbers are the dashboard's
Replay page's (``dmlviz.views.replay``)."""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from dmlviz.notebook._view import View, draw, figure_html, labelled_runs
from dmlviz.runs import Run
from dmlviz.views import replay as views
from dmlviz.views.style import loss_name

PLAY_INTERVAL_MS = 700  # between two snapshots when playing


class Replay(View):
    """``runs`` (label -> Run) on one epoch slider; ``show(epoch)`` moves it as a student would."""

    def __init__(self, runs: dict[str, Run]):
        self.runs = runs
        self.data = {}
        for label, run in runs.items():
            data = views.load_replay(run)
            if data is None:
                raise ValueError(f"{run.path} recorded no replay: train it with replay_every > 0")
            self.data[label] = data
        self.epochs = views.all_epochs(list(self.data.values()))
        self.slider = widgets.SelectionSlider(options=self.epochs, value=self.epochs[-1],
                                              description="epoch", continuous_update=True)  # fmt: skip
        self.play = widgets.Play(min=0, max=len(self.epochs) - 1, interval=PLAY_INTERVAL_MS,
                                 value=len(self.epochs) - 1)  # fmt: skip
        self.play.observe(lambda change: setattr(self.slider, "value", self.epochs[change["new"]]),
                          names="value")  # fmt: skip
        self.curves = self._curves(self.slider.value)
        self.maps = {label: None for label, data in self.data.items() if data.coords is not None}
        self.curves_output = widgets.Output()
        self.map_outputs = {label: widgets.Output() for label in self.maps}
        self.numbers = widgets.HTML()
        notes = [p for data in self.data.values() for p in data.problems]
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.play, self.slider]), self.numbers, self.curves_output,
             widgets.HBox(list(self.map_outputs.values())),
             widgets.HTML("<br>".join(f"<i>{note}</i>" for note in dict.fromkeys(notes)))]
        )  # fmt: skip
        self.show(self.slider.value)

    def _curves(self, epoch: int) -> go.Figure:
        replays = [(label, self.runs[label].config.get("loss", ""), data)
                   for label, data in self.data.items()]  # fmt: skip
        return views.replay_curves(replays, epoch, height=420)

    def snapshot(self, label: str, epoch: int) -> dict:
        """The metrics of ``label``'s last snapshot at or before ``epoch`` (``REPLAY_COLUMNS``)."""
        data = self.data[label]
        return data.metrics.iloc[views.frame_at(data.epochs, epoch)].to_dict()

    def show(self, epoch: int) -> None:
        """Move to ``epoch``: the curves' marker, the maps and the numbers."""
        if self.slider.value != epoch:
            self.slider.value = epoch  # observing the slider calls show again
            return
        self.curves = self._curves(epoch)
        draw(self.curves_output, self.curves)
        for label, output in self.map_outputs.items():
            self.maps[label] = views.replay_map(self.data[label], epoch, title=label, height=380)
            draw(output, self.maps[label])
        rows = []
        for label in self.data:
            row = self.snapshot(label, epoch)
            loss = loss_name(self.runs[label].config.get("loss", ""))
            rows.append(
                f"<tr><td>{label} ({loss})</td><td>{int(row['epoch'])}</td>"
                + "".join(
                    f"<td>{_number(row.get(key))}</td>"
                    for key in ("map@r", "detector_auroc", "memorised")
                )
                + "</tr>"
            )
        self.numbers.value = (
            "<table><tr><th>run</th><th>snapshot epoch</th><th>test MAP@R</th>"
            "<th>detector AUROC</th><th>memorised</th></tr>" + "".join(rows) + "</table>"
        )

    def static_html(self) -> str:
        figures = [self.curves, *self.maps.values()]
        return self.numbers.value + "".join(figure_html(figure) for figure in figures)


def _number(value) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def replay(runs) -> Replay:
    """The replay widget of one ``Run`` or of several (a dict label -> Run, or a list)."""
    return Replay(labelled_runs(runs))
