"""The one catalogue of metrics: each number dmlviz stores and shows, declared once.

A metric's ``key`` is how it is stored (``eval/<split>_metrics.json``, ``metrics.jsonl``, the
replay table ``eval/replay.parquet``, ``Run.summary()`` and the sweep's ``runs.csv``); the
rest says how it reads (labels, digits, help), which way is better, where ``Run.summary()`` finds
it and where it is shown. The runs table, ``dmlviz runs``, the sweep report, the Replay page's
curves, the training curves and the noise lab's comparison all read this list, so a new metric
column is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where a metric is shown (``Metric.shown``):
TABLE = "table"  # the dashboard's runs table (``dmlviz.views.runs.TABLE_COLUMNS``)
CLI = "cli"  # ``dmlviz runs``
REPORT = "report"  # the sweep's runs.csv / summary.md, the charts against noise
CURVES = "curves"  # a run's training curves (test and validation, from metrics.jsonl)
PLACES = (TABLE, CLI, REPORT, CURVES)


@dataclass(frozen=True)
class Metric:
    """One metric. ``label`` names it in charts, ``short`` in table headers; ``digits`` after the
    point in tables; ``source``: where ``Run.summary()`` reads it (None: not in a run's summary),
    a key of ``dmlviz.runs.files.METRIC_SOURCES``, which names its file: "test" or "train" (that
    split's evaluation), "consistency", "replay" (the training replay's summary) or "training" (the best
    value over the epochs of ``metrics.jsonl`` of the key ``best_of``); ``stored_as``: its key
    in that file when not ``key`` (None: ``key``);
    ``per_query``: the column of the per-query table it is the mean of (``eval/<split>_per_query
    .parquet``); ``replay_panel``: its panel (1-4) among the Replay page's curves;
    ``chart_title``: the title of its chart against label noise in the noise lab's comparison."""

    key: str
    label: str
    short: str
    help: str
    digits: int = 3
    higher_is_better: bool = True
    source: str | None = None
    best_of: str | None = None
    stored_as: str | None = None
    per_query: str | None = None
    shown: tuple[str, ...] = ()
    replay_panel: int | None = None
    chart_title: str | None = None

    def format(self, value: float) -> str:
        """``value`` with the metric's ``digits``."""
        return f"{value:.{self.digits}f}"


METRICS: dict[str, Metric] = {}


def register_metric(**facts) -> Metric:
    """Add the metric ``facts["key"]`` (``Metric``'s fields); returns its entry."""
    entry = Metric(**facts)
    if entry.key in METRICS:
        raise ValueError(f"metric {entry.key!r} is registered twice")
    if not set(entry.shown) <= set(PLACES):
        raise ValueError(f"metric {entry.key!r}: unknown place in {entry.shown}")
    METRICS[entry.key] = entry
    return entry


def metric(key: str) -> Metric:
    """The entry of ``key`` (``KeyError`` for an unknown one)."""
    return METRICS[key]


def label(key: str) -> str:
    """How a chart names ``key``: its ``label``, or the key itself for one not catalogued."""
    return METRICS[key].label if key in METRICS else key


def shown_in(place: str) -> tuple[Metric, ...]:
    """The metrics shown in ``place`` (one of ``PLACES``), in catalogue order."""
    return tuple(m for m in METRICS.values() if place in m.shown)


def summary_metrics() -> tuple[Metric, ...]:
    """The metrics of a run's summary row (``Run.summary()``), in catalogue order."""
    return tuple(m for m in METRICS.values() if m.source is not None)


def per_query_metrics() -> tuple[Metric, ...]:
    """The metrics with a per-query column (those ``dmlviz compare`` resamples), in catalogue order."""
    return tuple(m for m in METRICS.values() if m.per_query is not None)


def replay_curves() -> tuple[Metric, ...]:
    """The metrics the Replay page draws against epoch, in catalogue order."""
    return tuple(m for m in METRICS.values() if m.replay_panel is not None)


# --- retrieval (eval/<split>_metrics.json, metrics.jsonl per evaluated epoch) -----------------

register_metric(
    key="map@r",
    label="MAP@R",
    short="MAP@R",
    help="mean average precision at R, R being a query's number of relevant references",
    digits=4,
    source="test",
    per_query="ap@r",
    shown=(TABLE, CLI, REPORT, CURVES),
    replay_panel=1,
    chart_title="Test MAP@R against label noise",
)
register_metric(
    key="recall@1",
    label="R@1",
    short="R@1",
    help="share of queries whose nearest reference has their label",
    digits=4,
    source="test",
    shown=(TABLE, CLI, REPORT, CURVES),
    replay_panel=1,
)
register_metric(
    key="train_map@r",
    label="Train MAP@R",
    short="train MAP@R",
    help="MAP@R of the train split searched within itself, by its clean labels: its distance above "
    "the test MAP@R is how much the model overfits its training images",
    digits=4,
    source="train",
    stored_as="map@r",
    shown=(REPORT,),
)
register_metric(
    key="best_map@r",
    label="Best MAP@R during training",
    short="best MAP@R",
    help="the highest test MAP@R of the epochs evaluated during training",
    digits=4,
    source="training",
    best_of="map@r",
    shown=(CLI,),
)
register_metric(
    key="r_precision",
    label="R-precision",
    short="R-precision",
    help="share of relevant references among the first R",
    per_query="r_precision",
)
register_metric(
    key="precision@1",
    label="P@1",
    short="P@1",
    help="share of queries whose nearest reference is relevant",
    per_query="precision@1",
)

# --- neighbour consistency (eval/consistency.json) --------------------------------------------

register_metric(
    key="consistency_clean",
    label="Consistency (clean samples)",
    short="consistency (clean)",
    help="mean share of a clean training image's neighbours that carry its label",
    source="consistency",
    shown=(REPORT,),
    replay_panel=4,
)
register_metric(
    key="consistency_flipped",
    label="Consistency (flipped samples)",
    short="consistency (flipped)",
    help="mean share of a flipped training image's neighbours that carry its (wrong) label",
    source="consistency",
    shown=(REPORT,),
    replay_panel=4,
)
register_metric(
    key="detector_auroc",
    label="Noise-detector AUROC",
    short="detector AUROC",
    help="how well low neighbour consistency finds the flipped training labels (0.5 is chance)",
    source="consistency",
    shown=(TABLE, CLI, REPORT),
    replay_panel=2,
    chart_title="Noise-detector AUROC against label noise",
)

# --- training replay (eval/replay.parquet per snapshot, eval/replay.json) ---------------------

register_metric(
    key="memorised",
    label="Flipped images memorised",
    short="memorised share",
    help="share of flipped probe images whose nearest neighbours carry their wrong label",
    higher_is_better=False,
    replay_panel=3,
)
register_metric(
    key="auroc_peak_epoch",
    label="Epoch of the detector's best AUROC",
    short="AUROC peak (epoch)",
    help="the replay snapshot at which the noise detector's AUROC peaked",
    digits=1,
    source="replay",
    shown=(REPORT,),
)
register_metric(
    key="memorised_end",
    label="Flipped images memorised at the end",
    short="memorised at end",
    help="the memorised share at the last replay snapshot",
    higher_is_better=False,
    source="replay",
    shown=(REPORT,),
    chart_title="Flipped images memorised at the end",
)
