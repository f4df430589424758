"""The HTML report: one self-contained file of a run or a sweep (plotly.js inlined once,
thumbnails as data URIs), built from the same ``dmlviz.views`` figures and cards as the dashboard:
settings and preset source, retrieval against label noise, each run's map by class and by flipped
label, its worst queries' ranked lists, its most suspicious training labels, and replay frames."""

from __future__ import annotations

import dataclasses
import html
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from dmlviz.runs import Run, RunError, find_runs
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
from dmlviz.views.embedding_map import class_names_of, map_figure
from dmlviz.views.lens import (
    LENS_CSS,
    query_card_html,
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
from dmlviz.views.thumbs import ThumbnailCache
from dmlviz.views.tuning import presets_display

WORST_QUERIES = 10  # ranked lists per run
RANKED = 8  # neighbours shown per ranked list
SUSPICIOUS = 12  # training images per run
MAX_MAP_POINTS = 4000  # a larger split's map is a random subsample of this many points
REPLAY_FRAMES = 4  # snapshots shown per run: evenly spaced, the last one included

PAGE_CSS = """
<style>
body {font-family:sans-serif;margin:24px auto;max-width:1280px;padding:0 16px;color:#222}
h1 {margin-bottom:4px} h2 {border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}
.dmlviz-dim {color:#777}
table.dmlviz-table {border-collapse:collapse;font-size:13px;margin:8px 0}
table.dmlviz-table th, table.dmlviz-table td {border:1px solid #ddd;padding:3px 8px;text-align:left}
table.dmlviz-table th {background:#f4f4f4}
.dmlviz-row {display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
.dmlviz-row > div {min-width:0}
.dmlviz-query-row {display:flex;gap:12px;align-items:flex-start;margin:8px 0}
</style>
"""


def report_runs(source: str | Path) -> tuple[list[Run], pd.DataFrame, pd.DataFrame]:
    """The runs a report covers: ``source`` itself when it is a run folder, else every run below
    it (``find_runs``). Returns ``(runs, table, broken)`` with ``table`` and ``broken`` as
    ``runs_overview`` gives them. Raises ``RunError`` when there is no readable run."""
    source = Path(source)
    items = [Run.load(source)] if (source / "config.json").is_file() else find_runs(source)
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


class _Figures:
    """Turns figures into ``<div>``s (``svg_figure``) that call the plotly.js inlined once in
    the page's head."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, figure: go.Figure) -> str:
        self.count += 1
        return svg_figure(figure).to_html(
            full_html=False,
            include_plotlyjs=False,
            config={"displaylogo": False, "scrollZoom": True, "responsive": True},
        )


def build_report(source: str | Path) -> str:
    """The report of the run or sweep folder ``source`` as one self-contained HTML page."""
    runs, table, broken = report_runs(source)
    figure = _Figures()
    parts = [
        f"<h1>dmlviz report: {html.escape(Path(source).name)}</h1>",
        f"<p class='dmlviz-dim'>{len(runs)} run(s) from <code>{html.escape(str(source))}</code>, "
        f"made {datetime.now():%Y-%m-%d %H:%M}. The dashboard's figures, frozen: hover and zoom "
        "work, nothing here needs a server or a network.</p>",
    ]
    if len(broken):
        items = "".join(
            f"<li><b>{html.escape(r['name'])}</b>: {html.escape(r['reason'])}</li>"
            for r in broken.to_dict("records")
        )
        parts.append(f"<p>Run folders that cannot be read:</p><ul>{items}</ul>")
    parts.append(_overview(Path(source), table, figure))
    for run, row in zip(runs, _rows(runs, table), strict=True):
        parts.append(_run_section(run, row, figure))
    body = "\n".join(parts)
    title = html.escape(f"dmlviz report: {Path(source).name}")
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"{PAGE_CSS}{LENS_CSS}<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>"
        f"<script>{get_plotlyjs()}</script></head><body>\n{body}\n</body></html>\n"
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


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False, classes="dmlviz-table", border=0, na_rep="-", float_format="{:.3f}".format
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


def _overview(source: Path, table: pd.DataFrame, figure: _Figures) -> str:
    parts = [_sweep_settings_html(source), "<h2>Runs</h2>"]
    shared = shared_settings(table)
    if shared:
        settings = ", ".join(
            f"{html.escape(name.replace('_', ' '))} <b>{html.escape(str(value))}</b>"
            for name, value in shared.items()
        )
        parts.append(f"<p>All runs: {settings}</p>")
    parts.append(_table_html(_percent_noise(display_table(table))))
    losses = {loss_name(str(loss)) for loss in table["loss"].dropna()}
    presets = presets_display(sorted({str(d) for d in table["dataset"].dropna()}) or None)
    presets = presets[presets["Loss"].isin(losses)]
    if len(presets):
        parts.append(
            "<h3>Presets</h3><p class='dmlviz-dim'>The settings dmlviz trains each loss with "
            "unless told otherwise, and where they come from (<i>tuned on validation</i>: "
            "<code>dmlviz tune</code>, scored on validation folds of the train split). Each "
            "run's own settings are under its name below.</p>"
        )
        parts.append(_table_html(presets))
    parts.append(
        "<h2>Retrieval against label noise</h2><p class='dmlviz-dim'>One line per loss: the "
        "mean over seeds, the bar one standard deviation. A robust loss keeps its line flat as "
        "more training labels are flipped.</p>"
    )
    parts.append(
        "<div class='dmlviz-row'>"
        f"<div>{figure(metric_vs_noise(table, 'map@r'))}</div>"
        f"<div>{figure(metric_vs_noise(table, 'recall@1'))}</div></div>"
    )
    detector = across_runs(table)
    if detector:
        parts.append(
            "<p class='dmlviz-dim'>Neighbour consistency (the share of a training image's "
            "nearest neighbours that share its training label) of kept and of flipped labels, "
            "and how well its disagreement finds the flipped ones (AUROC, 0.5 = chance).</p>"
        )
        parts.append(
            "<div class='dmlviz-row'>"
            + "".join(f"<div>{figure(f)}</div>" for f in detector)
            + "</div>"
        )
    return "\n".join(parts)


def _sweep_settings_html(source: Path) -> str:
    """The sweep's spec (``sweep.json``) as a table, or nothing for a single run."""
    from dmlviz.experiments.folder import SPEC_FILE
    from dmlviz.experiments.spec import read_spec_file

    if not (source / SPEC_FILE).is_file():
        return ""
    try:
        spec = dataclasses.asdict(read_spec_file(source / SPEC_FILE))
    except (OSError, ValueError) as error:
        return f"<p>The sweep's {SPEC_FILE} cannot be read: {html.escape(str(error))}</p>"
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(_value(v))}</td></tr>"
        for k, v in spec.items()
        if v is not None
    )
    return f"<h2>Sweep settings</h2><table class='dmlviz-table'>{rows}</table>"


def _value(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _run_section(run: Run, row: dict[str, Any], figure: _Figures) -> str:
    parts = [f"<h2>{html.escape(run_label(row))}</h2>", _settings_html(run)]
    path = html.escape(quote(run.path))
    if row.get("state") == "died":
        parts.append(
            f"<p>This run died during training (after epoch {row.get('epoch') or 0}): continue "
            f"it with <code>dmlviz train --resume --out {path}</code>.</p>"
        )
    metrics = run.metrics()
    if not metrics.empty:
        parts.append(figure(training_curves(metrics, row.get("loss"))))
    splits = views_data.embedded_splits(run)
    datasets: dict[str, Any] = {}

    def names_and_thumbs(split: str) -> tuple[list[str] | None, ThumbnailCache]:
        if split not in datasets:
            try:
                datasets[split] = run.dataset(split)
            except Exception:  # data not on this machine: placeholders, as the dashboard does
                datasets[split] = None
        dataset = datasets[split]
        return views_data.class_names_or_none(dataset), ThumbnailCache(dataset)

    loaded: dict[str, views_data.SplitData] = {}
    for split in splits:
        try:
            loaded[split] = views_data.load_split(run, split)
        except RunError as error:
            parts.append(f"<p>{html.escape(str(error))}</p>")
    if not splits:
        parts.append(
            f"<p>No embeddings yet, so no map, worst queries or suspicious labels: "
            f"{html.escape(run.embed_hint())}, then <code>dmlviz evaluate {path}</code> and "
            f"<code>dmlviz project {path}</code>.</p>"
        )
    elif not any(data.per_query is not None for data in loaded.values()):
        parts.append(
            f"<p>Not evaluated yet, so no worst queries or suspicious labels: run "
            f"<code>dmlviz evaluate {path}</code>.</p>"
        )
    map_split = "train" if "train" in loaded else next(iter(loaded), None)
    if map_split is not None:
        parts.append(_maps_html(run, loaded[map_split], names_and_thumbs(map_split)[0], figure))
    query_split = "test" if "test" in loaded else map_split
    if query_split is not None and loaded[query_split].per_query is not None:
        parts.append(_worst_queries_html(loaded[query_split], names_and_thumbs))
    train = loaded.get("train")
    if train is not None and train.consistency is not None:
        clean_known = clean_labels_known(run.config.get("noise_rate"))
        parts.append(_suspicious_html(train, *names_and_thumbs("train"), figure, clean_known))
    parts.append(_replay_html(run, names_and_thumbs("train")[0], figure))
    return "\n".join(parts)


def _settings_html(run: Run) -> str:
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
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in settings.items()
    )
    return (
        f"<details><summary>Settings of <code>{html.escape(str(run.path))}</code></summary>"
        f"<table class='dmlviz-table'>{rows}</table></details>"
    )


def _maps_html(
    run: Run, data: views_data.SplitData, names: list[str] | None, figure: _Figures
) -> str:
    methods = views_data.map_methods(run, data.split)
    if not methods:
        return (
            f"<p>No map of the {data.split} split: run <code>dmlviz project {run.path}</code>.</p>"
        )
    frame, _ = views_data.load_map(run, data.split, methods[0], data, names)
    note = ""
    if len(frame) > MAX_MAP_POINTS:
        keep = np.sort(np.random.default_rng(0).choice(len(frame), MAX_MAP_POINTS, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
        note = f" (a random {MAX_MAP_POINTS} of its points)"
    colours = ["label"] + (["flipped"] if "flipped" in frame and frame["flipped"].any() else [])
    cells = "".join(
        f"<div>{figure(map_figure(frame, c, title=f'coloured by {c}', height=520))}</div>"
        for c in colours
    )
    return (
        f"<h3>Embedding map: {data.split} split, {methods[0].upper()}{note}</h3>"
        f"<div class='dmlviz-row'>{cells}</div>"
    )


def _worst_queries_html(data: views_data.SplitData, names_and_thumbs) -> str:
    names, thumbs = names_and_thumbs(data.split)
    reference = data.labels if data.reference_labels is None else data.reference_labels
    table = query_table(data.per_query, names, data.neighbours, reference, data.flipped)
    worst = filter_queries(table, sort="AP@R, worst first").head(WORST_QUERIES)
    ref_thumbs = (
        thumbs if data.reference_split == data.split else names_and_thumbs(data.reference_split)[1]
    )
    parts = [
        f"<h3>The {len(worst)} worst queries of the {data.split} split</h3><p class='dmlviz-dim'>"
        "Lowest AP@R first. Green frame: the neighbour has the query's class; red: it does not."
        "</p>"
    ]
    for query in worst["query"]:
        query = int(query)
        ranking = stored_ranking(query, data.neighbours, data.similarities, data.per_query)
        ranked = ranked_list(
            ranking, data.labels, names, data.observed, RANKED, data.reference_labels
        )
        query_class = str(class_names_of(np.array([data.labels[query]]), names)[0])
        observed = None
        if data.observed is not None:
            observed = str(class_names_of(np.array([data.observed[query]]), names)[0])
        ap = ranking.stats.get("ap@r", float("nan"))
        parts.append(
            "<div class='dmlviz-query-row'>"
            f"{query_card_html(thumbs(query), query, query_class, observed)}"
            f"<div><div class='dmlviz-dim'>AP@R {ap:.3f}</div>"
            f"{ranked_strip_html(ranked, ref_thumbs.many(ranked['index']))}</div></div>"
        )
    return "\n".join(parts)


def _suspicious_html(
    data: views_data.SplitData,
    names: list[str] | None,
    thumbs: ThumbnailCache,
    figure: _Figures,
    clean_known: bool,
) -> str:
    per_sample = data.consistency
    k = (data.consistency_summary or {}).get("k")
    roc, auroc = detector_roc(per_sample)
    table = suspicious_samples(per_sample, names, SUSPICIOUS)
    score = "-" if auroc is None else f"{auroc:.3f}"
    legend = (
        "Orange frame: the label really was flipped; grey: a false alarm."
        if clean_known
        else "Imported without clean labels: which labels are wrong is not known."
    )
    return (
        f"<h3>Most suspicious training labels</h3><p class='dmlviz-dim'>Detector AUROC {score}. "
        f"{legend}</p>"
        f"{suspicious_gallery_html(table, thumbs.many(table['index']), clean_known)}"
        f"<div class='dmlviz-row'><div>{figure(consistency_histogram(per_sample, k))}</div>"
        f"<div>{figure(roc)}</div></div>"
    )


def _replay_html(run: Run, names: list[str] | None, figure: _Figures) -> str:
    try:
        data = load_replay(run)
    except RunError as error:
        return f"<p>Replay: {html.escape(str(error))}</p>"
    if data is None:
        return ""
    if data.coords is None:  # aligned once per run and cached in it, as the Replay page does
        from dmlviz.project import project_replay

        project_replay(run)
        data = load_replay(run)
    if data is None or data.coords is None:
        return ""
    picks = np.unique(np.linspace(0, len(data.epochs) - 1, REPLAY_FRAMES).round().astype(int))
    cells = "".join(
        f"<div>{figure(replay_map(data, data.epochs[i], 1, names, title=f'epoch {data.epochs[i]}', height=420))}</div>"
        for i in picks
    )
    curves = replay_curves([(run.name, run.config.get("loss"), data)], data.epochs[-1])
    return f"<h3>Training replay</h3><div class='dmlviz-row'>{cells}</div>{figure(curves)}"
