"""The HTML report: one self-contained file of a run or a sweep (plotly.js inlined once,
thumbnails as data URIs), built from the same ``dmlviz.views`` figures and cards as the dashboard:
settings and preset source, retrieval against label noise, each run's map by class and by flipped
label, its worst queries' ranked lists, its most suspicious training labels, and replay frames."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from dmlviz.experiments.differences import difference_sentence, loss_differences
from dmlviz.runs import CONFIG, Run, RunError, find_runs
from dmlviz.runs.atomic import atomic_write_text, check_writable, make_parents, remove_made
from dmlviz.runs.run import quote
from dmlviz.views import data as views_data
from dmlviz.views.consistency import (
    across_runs,
    clean_labels_known,
    consistency_histogram,
    detector_roc,
    suspicious_gallery_html,
    suspicious_samples,
)
from dmlviz.views.embedding_map import map_figure
from dmlviz.views.lens import (
    LENS_CSS,
    query_card_html,
    query_classes,
    ranked_list,
    ranked_strip_html,
    stored_ranking,
)
from dmlviz.views.queries import filter_queries, query_table
from dmlviz.views.replay import load_replay, replay_curves, replay_map
from dmlviz.views.runs import (
    display_table,
    metric_vs_noise,
    run_label,
    runs_overview,
    shared_settings,
    training_curves,
)
from dmlviz.views.style import loss_name, percent
from dmlviz.views.templating import Markup, render
from dmlviz.views.thumbs import ThumbnailCache
from dmlviz.views.tuning import presets_display
from dmlviz.views.withheld import withheld_figures

WORST_QUERIES = 10  # ranked lists per run
RANKED = 8  # neighbours shown per ranked list
SUSPICIOUS = 12  # training images per run
MAX_MAP_POINTS = 4000  # a larger split's map is a random subsample of this many points
REPLAY_FRAMES = 4  # snapshots shown per run: evenly spaced, the last one included


def report_runs(source: str | Path) -> tuple[list[Run], pd.DataFrame, pd.DataFrame]:
    """The runs a report covers: ``source`` itself when it is a run folder, else every run below
    it (``find_runs``). Returns ``(runs, table, broken)`` with ``table`` and ``broken`` as
    ``runs_overview`` gives them. Raises ``RunError`` when there is no readable run."""
    source = Path(source)
    items = [Run.load(source)] if (source / CONFIG).is_file() else find_runs(source)
    table, broken = runs_overview(items)
    runs = [
        item for item in items if isinstance(item, Run) and str(item.path) in set(table["path"])
    ]
    if not runs:
        raise RunError(f"{source} holds no readable run")
    return runs, table, broken


def svg_figure(figure: go.Figure) -> go.Figure:
    """``figure`` with its WebGL scatter traces (the maps) as SVG ones: a browser keeps only about
    16 WebGL contexts alive at once, fewer than a sweep's maps, and SVG also prints."""
    traces = [
        go.Scatter(trace.to_plotly_json() | {"type": "scatter"})
        if trace.type == "scattergl"
        else trace
        for trace in figure.data
    ]
    return go.Figure(traces, figure.layout)


def _figure(figure: go.Figure) -> Markup:
    """``figure`` (``svg_figure``) as a ``<div>`` that calls the plotly.js inlined once in the
    page's head."""
    return Markup(
        svg_figure(figure).to_html(
            full_html=False,
            include_plotlyjs=False,
            config={"displaylogo": False, "scrollZoom": True, "responsive": True},
        )
    )


def build_report(source: str | Path) -> str:
    """The report of the run or sweep folder ``source`` as one self-contained HTML page."""
    runs, table, broken = report_runs(source)
    source = Path(source)
    return render(
        "report.html.j2",
        name=source.name,
        source=str(source),
        run_count=len(runs),
        made=f"{datetime.now():%Y-%m-%d %H:%M}",
        lens_css=Markup(LENS_CSS),
        plotly_js=Markup(get_plotlyjs()),
        broken=broken.to_dict("records"),
        **_sweep_settings(source),
        **_overview(table),
        runs=[_run_section(run, row) for run, row in zip(runs, _rows(runs, table), strict=True)],
    )


def write_report(source: str | Path, out: str | Path) -> Path:
    """Write ``build_report(source)`` to ``out`` atomically; returns ``out``. Raises
    ``ValueError`` (before building the report) when ``out`` is a folder or cannot be written,
    and leaves no folder it made behind."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"argument --out: {out} is a folder; give the report's file name")
    made = make_parents(out)
    try:
        check_writable(out.parent)
        atomic_write_text(out, build_report(source))
    except BaseException:
        remove_made(made)
        raise
    return out


def _rows(runs: list[Run], table: pd.DataFrame) -> list[dict[str, Any]]:
    by_path = {row["path"]: row for row in table.to_dict("records")}
    return [by_path[str(run.path)] for run in runs]


def _table_html(frame: pd.DataFrame) -> Markup:
    return Markup(
        frame.to_html(
            index=False, classes="dmlviz-table", border=0, na_rep="-", float_format="{:.3f}".format
        )
    )


def _percent_noise(frame: pd.DataFrame) -> pd.DataFrame:
    """The shown table with its noise rate (``display_table``'s percentage) as text like the run
    labels': "20 %", not a float with three decimals."""
    if "Noise rate" in frame:
        frame = frame.assign(
            **{
                "Noise rate": frame["Noise rate"].map(
                    lambda v: percent(v / 100) if pd.notna(v) else "-"
                )
            }
        )
    return frame


def _overview(table: pd.DataFrame) -> dict[str, Any]:
    """The runs table, the settings they share, the presets of their losses, the figures across
    runs and each loss against each other at each noise rate with its interval."""
    losses = {loss_name(str(loss)) for loss in table["loss"].dropna()}
    presets = presets_display(sorted({str(d) for d in table["dataset"].dropna()}) or None)
    presets = presets[presets["Loss"].isin(losses)]
    return {
        "shared": [
            (name.replace("_", " "), value) for name, value in shared_settings(table).items()
        ],
        "runs_table": _table_html(_percent_noise(display_table(table))),
        "presets_table": _table_html(presets) if len(presets) else None,
        "noise_figures": [_figure(metric_vs_noise(table, key)) for key in ("map@r", "recall@1")],
        "differences": [
            difference_sentence(row) for row in loss_differences(table).to_dict("records")
        ],
        "withheld_figures": [_figure(figure) for figure in withheld_figures(table)],
        "detector_figures": [_figure(f) for f in across_runs(table)],
    }


def _sweep_settings(source: Path) -> dict[str, Any]:
    """The sweep's spec (``sweep.json``) as ``(name, value)`` rows, or why it cannot be read;
    neither for a single run."""
    from dmlviz.experiments.folder import SPEC_FILE
    from dmlviz.experiments.spec import read_spec_file

    context: dict[str, Any] = {"spec_file": SPEC_FILE, "sweep_settings": [], "sweep_error": None}
    if not (source / SPEC_FILE).is_file():
        return context
    try:
        spec = dataclasses.asdict(read_spec_file(source / SPEC_FILE))
    except (OSError, ValueError) as error:
        return context | {"sweep_error": str(error)}
    rows = [(k.replace("_", " "), _value(v)) for k, v in spec.items() if v is not None]
    return context | {"sweep_settings": rows}


def _value(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _run_section(run: Run, row: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of one run (the context of ``run.html.j2``)."""
    metrics = run.metrics()
    splits = views_data.embedded_splits(run)
    names_and_thumbs = _NamesAndThumbs(run)
    loaded: dict[str, views_data.SplitData] = {}
    problems = []
    for split in splits:
        try:
            loaded[split] = views_data.load_split(run, split)
        except RunError as error:
            problems.append(str(error))
    section = {
        "label": run_label(row),
        "path": str(run.path),
        "command_path": quote(run.path),
        "settings": _settings(run),
        "died_after": (row.get("epoch") or 0) if row.get("state") == "died" else None,
        "curves": None if metrics.empty else _figure(training_curves(metrics, row.get("loss"))),
        "problems": problems,
        "embed_hint": None if splits else run.embed_hint(),
        "not_evaluated": not any(data.per_query is not None for data in loaded.values()),
        "maps": None,
        "worst": None,
        "suspicious": None,
    }
    map_split = "train" if "train" in loaded else next(iter(loaded), None)
    if map_split is not None:
        section["maps"] = _maps(run, loaded[map_split], names_and_thumbs(map_split)[0])
    query_split = "test" if "test" in loaded else map_split
    if query_split is not None and loaded[query_split].per_query is not None:
        section["worst"] = _worst_queries(loaded[query_split], names_and_thumbs)
    train = loaded.get("train")
    if train is not None and train.consistency is not None:
        clean_known = clean_labels_known(run.config.get("noise_rate"))
        section["suspicious"] = _suspicious(train, *names_and_thumbs("train"), clean_known)
    return section | _replay(run, names_and_thumbs("train")[0])


class _NamesAndThumbs:
    """A run's class names and thumbnails per split, its dataset loaded once per split."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.datasets: dict[str, Any] = {}

    def __call__(self, split: str) -> tuple[list[str] | None, ThumbnailCache]:
        if split not in self.datasets:
            try:
                self.datasets[split] = self.run.dataset(split)
            except Exception:  # data not on this machine: placeholders, as the dashboard does
                self.datasets[split] = None
        dataset = self.datasets[split]
        return views_data.class_names_or_none(dataset), ThumbnailCache(dataset)


def _settings(run: Run) -> list[tuple[str, Any]]:
    """The run's settings as ``(name, value)`` rows: its loss and where its hyperparameters come
    from first, then every other setting that is not a dict or a list."""
    config = run.config
    settings = {
        "loss": loss_name(str(config.get("loss"))),
        "hyperparameters (preset source)": config.get("preset_source") or "-",
        **{f"loss: {k}": v for k, v in (config.get("loss_kwargs") or {}).items()},
        **{
            k: v
            for k, v in config.items()
            if k not in ("loss", "loss_kwargs", "preset_source") and not isinstance(v, (dict, list))
        },
    }
    return list(settings.items())


def _maps(run: Run, data: views_data.SplitData, names: list[str] | None) -> dict[str, Any]:
    """The split's first stored map coloured by label (and by flipped label where some were),
    subsampled to ``MAX_MAP_POINTS``; ``method`` None when it has no map."""
    methods = views_data.map_methods(run, data.split)
    maps = {"split": data.split, "path": str(run.path), "method": None, "note": "", "figures": []}
    if not methods:
        return maps
    frame, _ = views_data.load_map(run, data.split, methods[0], data, names)
    if len(frame) > MAX_MAP_POINTS:
        keep = np.sort(np.random.default_rng(0).choice(len(frame), MAX_MAP_POINTS, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
        maps["note"] = f" (a random {MAX_MAP_POINTS} of its points)"
    colours = ["label"] + (["flipped"] if "flipped" in frame and frame["flipped"].any() else [])
    maps["method"] = methods[0].upper()
    maps["figures"] = [
        _figure(map_figure(frame, c, title=f"coloured by {c}", height=520)) for c in colours
    ]
    return maps


def _worst_queries(data: views_data.SplitData, names_and_thumbs: _NamesAndThumbs) -> dict:
    """The split's ``WORST_QUERIES`` lowest-AP@R queries, each as its card and its ranked list."""
    names, thumbs = names_and_thumbs(data.split)
    reference = data.labels if data.reference_labels is None else data.reference_labels
    table = query_table(data.per_query, names, data.neighbours, reference, data.flipped)
    worst = filter_queries(table, sort="AP@R, worst first").head(WORST_QUERIES)
    ref_thumbs = (
        thumbs if data.reference_split == data.split else names_and_thumbs(data.reference_split)[1]
    )
    queries = []
    for query in worst["query"]:
        query = int(query)
        ranking = stored_ranking(query, data.neighbours, data.similarities, data.per_query)
        ranked = ranked_list(
            ranking, data.labels, names, data.observed, RANKED, data.reference_labels
        )
        query_class, observed = query_classes(query, data.labels, data.observed, names)
        queries.append(
            {
                "card": Markup(query_card_html(thumbs(query), query, query_class, observed)),
                "ap": ranking.stats.get("ap@r", float("nan")),
                "strip": Markup(ranked_strip_html(ranked, ref_thumbs.many(ranked["index"]))),
            }
        )
    return {"split": data.split, "queries": queries}


def _suspicious(
    data: views_data.SplitData,
    names: list[str] | None,
    thumbs: ThumbnailCache,
    clean_known: bool,
) -> dict[str, Any]:
    """The ``SUSPICIOUS`` training labels the neighbours disagree with most, the consistency
    histogram and the detector's ROC curve."""
    per_sample = data.consistency
    k = (data.consistency_summary or {}).get("k")
    roc, auroc = detector_roc(per_sample)
    table = suspicious_samples(per_sample, names, SUSPICIOUS)
    gallery = suspicious_gallery_html(table, thumbs.many(table["index"]), clean_known)
    return {
        "auroc": "-" if auroc is None else f"{auroc:.3f}",
        "clean_known": clean_known,
        "gallery": Markup(gallery),
        "figures": [_figure(consistency_histogram(per_sample, k)), _figure(roc)],
    }


def _replay(run: Run, names: list[str] | None) -> dict[str, Any]:
    """``REPLAY_FRAMES`` frames of the run's replay map and its curves (``replay`` None without a
    replay), or why the replay cannot be read (``replay_error``)."""
    try:
        data = load_replay(run)
    except RunError as error:
        return {"replay": None, "replay_error": str(error)}
    if data is not None and data.coords is None:  # aligned once per run and cached in it
        from dmlviz.project import project_replay

        project_replay(run)
        data = load_replay(run)
    if data is None or data.coords is None:
        return {"replay": None, "replay_error": None}
    picks = np.unique(np.linspace(0, len(data.epochs) - 1, REPLAY_FRAMES).round().astype(int))
    frames = [
        replay_map(data, data.epochs[i], 1, names, title=f"epoch {data.epochs[i]}", height=420)
        for i in picks
    ]
    curves = replay_curves([(run.name, run.config.get("loss"), data)], data.epochs[-1])
    return {
        "replay": {"frames": [_figure(f) for f in frames], "curves": _figure(curves)},
        "replay_error": None,
    }
