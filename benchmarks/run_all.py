"""Run every benchmark in this folder, then regenerate docs/performance.md from their results.

Each benchmark is a script ``benchmarks/<name>.py`` that writes ``benchmarks/results/<name>.json``
(see ``_common.write_result``). ``--quick`` passes ``--quick`` on to each one: a smoke run that checks
the benchmarks work, not how fast anything is; its results go to a temporary folder, so the
measured numbers in ``benchmarks/results/`` and the report stay those of the last full run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import SKIPPED  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results"
REPORT = REPO / "docs" / "performance.md"
CHARTS = REPO / "docs" / "performance"
CHART_SIZE = {"width": 760, "height": 380}  # pixels of a chart's PNG

# The report's opening table: (what, benchmark, table, row filter, result as a format string of the
# row's columns). A row whose benchmark or columns are missing says so instead of a number.
HEADLINES: list[tuple[str, str, str, dict, str]] = [
    (
        "Exact retrieval metrics of 100k x 512 embeddings against each other",
        "eval_speed",
        "exact",
        {"n": 100000},
        "{ratio_to_faiss:.2f}x the time of a bare faiss search ({ours_s:.0f} s against "
        "{faiss_s:.0f} s); pytorch-metric-learning's AccuracyCalculator takes {pml_over_ours:.1f}x "
        "as long; same metrics (largest difference {max_diff_vs_pml:.1g})",
    ),
    (
        "Approximate mode on the same 100k",
        "eval_speed",
        "approximate",
        {},
        "{approximate_s:.1f} s, {speedup_vs_hnsw_512d:.2f}x faster than a 512-d HNSW index; every "
        "ranking metric within {max_error:.4f} of exact",
    ),
    (
        "Contextual loss, forward and backward of a batch of 1,024",
        "loss_speed",
        "contextual",
        {"n": 1024},
        "{speedup:.1f}x faster than a transcription of the authors' code (loss difference "
        "{loss_abs_diff:.1g})",
    ),
    (
        "Contextual loss against pytorch-metric-learning's RankedListLoss, batch of 1,024",
        "loss_speed",
        "contextual",
        {"n": 1024},
        "{time_vs_pml_rll:.2f}x its time (target: at most 1; spread over rounds "
        "{time_vs_pml_rll_spread:.2f})",
    ),
    (
        "Ranked List Loss, batch of 1,024",
        "loss_speed",
        "rll",
        {"n": 1024},
        "{speedup_vs_pml:.1f}x faster than pytorch-metric-learning's RankedListLoss",
    ),
    (
        "`make demo` on a fresh folder (9 digits runs, maps)",
        "demo_time",
        "calls",
        {"call": "first (train, evaluate, map)"},
        "{wall_s:.0f} s (promised: under {limit_s:.0f} s)",
    ),
    (
        "Embedding map page of 200k points, warm",
        "map_paint",
        "paint",
        {"path": "map page", "points": 200000},
        "{warm_median_s:.1f} s, {ratio_to_all_points:.2f}x the time of drawing every point",
    ),
    (
        "Embedding map, all 1M points with deck.gl (software WebGL)",
        "map_webgl",
        "paths",
        {"path": "deck.gl every point", "points": 1000000},
        "first paint {warm_paint_s_ratio_to_plotly:.1f}x, first hover "
        "{warm_hover_s_ratio_to_plotly:.1f}x the time of the plotly sample's: the sample stays",
    ),
    (
        "Query lens, a new query among 50k",
        "dashboard_latency",
        "latency",
        {"points": 50000},
        "{lens_new_query_s:.2f} s on the server",
    ),
    (
        "Noise detector on digits at 40 % noise (MLP embeddings)",
        "noise_detector",
        "detectors",
        {"detector": "dmlviz", "features": "mlp", "noise_rate": 0.4},
        "AUROC {auroc:.3f} in {seconds:.2f} s (cleanlab's detectors beside it in the table)",
    ),
    (
        "UMAP of 50k points with faiss's neighbours instead of its own",
        "umap_speed",
        "maps",
        {"n": 50000},
        "speed-up {speedup:.2f}x (below 1: slower)",
    ),
    (
        "UMAP map of 20k x 64 in 2,000 classes of 10, against umap-learn's default",
        "map_many_classes",
        "maps",
        {"n": 20000},
        "{ours_s:.0f} s, {speedup:.1f}x faster (trustworthiness {trust_ours:.3f} against "
        "{trust_umap_default:.3f})",
    ),
]


def benchmark_scripts(only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts, in name order (helpers starting with ``_`` and this file excluded)."""
    scripts = sorted(
        p for p in HERE.glob("*.py") if not p.name.startswith("_") and p != Path(__file__)
    )
    scripts = [
        p for p in scripts if p.stem not in ("run_all", "contextual_transcription", "gpu_check")
    ]
    if only:
        unknown = sorted(set(only) - {p.stem for p in scripts})
        if unknown:
            names = ", ".join(p.stem for p in scripts)
            raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {names}")
        scripts = [p for p in scripts if p.stem in only]
    return scripts


def run_benchmarks(scripts: list[Path], quick: bool, results_dir: Path) -> dict[str, str]:
    """Run each script in its own process; returns ``{name: "ok" | "skipped" | "failed (exit
    N)"}`` (skipped: it cannot run on this machine, e.g. without Chromium, and said why)."""
    env = {**os.environ, "DMLVIZ_BENCH_RESULTS": str(results_dir), "PYTHONUNBUFFERED": "1"}
    outcome = {}
    for script in scripts:
        print(f"== {script.stem}{' (quick)' if quick else ''}", flush=True)
        start = time.perf_counter()
        cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
        code = subprocess.call(cmd, cwd=REPO, env=env)
        seconds = time.perf_counter() - start
        outcome[script.stem] = {0: "ok", SKIPPED: "skipped"}.get(code, f"failed (exit {code})")
        print(f"   {outcome[script.stem]} in {seconds:.1f} s", flush=True)
    return outcome


def _tables(payload: dict) -> list[tuple[str, list[dict]]]:
    """Every list of flat records in a result payload, with its key: these become tables."""
    found = []
    for key, value in payload.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            found.append((key, value))
    return found


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return ""
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    """Rows of flat records as a GitHub Markdown table (nested values shown as JSON)."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns and not isinstance(row[c], (dict, list))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def headline_table(payloads: dict[str, dict]) -> str:
    """The report's opening table: each of ``HEADLINES`` in plain words with its measured result."""
    lines = ["| what | result | from |", "|---|---|---|"]
    for what, name, key, where, result in HEADLINES:
        rows = (payloads.get(name) or {}).get(key) or []
        row = next((r for r in rows if all(r.get(k) == v for k, v in where.items())), None)
        try:
            text = result.format(**row) if row else "not measured yet"
        except (KeyError, TypeError, ValueError):
            text = "not in the last results"
        lines.append(f"| {what} | {text} | [{name}](#{name}) |")
    return "\n".join(lines)


def chart_html(name: str, key: str, rows: list[dict], spec: dict | None) -> Path | None:
    """A plotly line chart of a result table as a standalone HTML file; None when nothing to plot.

    ``spec`` (the payload's optional ``chart``) names ``x``, ``y`` (columns) and ``color``; without
    it the first column is x and every numeric column whose name mentions a ratio or time is y.
    """
    import pandas as pd
    import plotly.express as px

    frame = pd.DataFrame(rows)
    spec = spec or {}
    x = spec.get("x") or frame.columns[0]
    numeric = [c for c in frame.columns if c != x and pd.api.types.is_numeric_dtype(frame[c])]
    y = spec.get("y") or [c for c in numeric if any(t in c for t in ("ratio", "_s", "ms", "per_s"))]
    y = [c for c in ([y] if isinstance(y, str) else y) if c in frame.columns]
    if x not in frame.columns or not y:
        return None
    color = spec.get("color") if spec.get("color") in frame.columns else None
    if color and len(y) == 1:
        figure = px.line(frame, x=x, y=y[0], color=color, markers=True, title=f"{name}: {key}")
    else:
        long = frame.melt(id_vars=[x], value_vars=y, var_name="measure", value_name="value")
        figure = px.line(
            long, x=x, y="value", color="measure", markers=True, title=f"{name}: {key}"
        )
    if spec.get("log_y"):
        figure.update_yaxes(type="log")
    CHARTS.mkdir(parents=True, exist_ok=True)
    path = CHARTS / f"{name}_{key}.html"
    figure.write_html(path, include_plotlyjs="cdn", full_html=True)
    _FIGURES[path.with_suffix(".png")] = figure
    return path


_FIGURES: dict = {}  # PNG path -> the figure chart_html drew, rendered by render_pngs


def render_pngs() -> list[Path]:
    """Draw every chart chart_html made as a small PNG (256 colours) in headless Chromium, so the
    charts show where Markdown renders but scripts do not run (a code host). Returns the PNGs;
    none, with a note on stderr, when Playwright or Chromium is missing."""
    import io
    import shutil

    figures = dict(_FIGURES)
    _FIGURES.clear()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = ""
    if not figures or not Path(chromium or "/nonexistent").exists():
        if figures:
            print("charts: no Playwright/Chromium, PNGs not redrawn", file=sys.stderr)
        return []
    from PIL import Image

    done = []
    with tempfile.TemporaryDirectory(prefix="dmlviz-charts-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": CHART_SIZE["width"] + 40, "height": 600})
        for png, figure in figures.items():
            figure.update_layout(**CHART_SIZE, template="plotly_white")
            html = Path(tmp) / f"{png.stem}.html"
            figure.write_html(html, include_plotlyjs=True, full_html=True)  # offline: inlined
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            shot = page.locator(".js-plotly-plot").first.screenshot()
            image = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=256)
            temp = png.with_name(f".{png.name}.tmp")
            image.save(temp, format="PNG", optimize=True)
            temp.replace(png)
            done.append(png)
        browser.close()
    return done


def write_report(results_dir: Path, outcome: dict[str, str] | None = None) -> Path:
    """Regenerate docs/performance.md from every ``<name>.json`` in ``results_dir``: the headline
    table, then each benchmark's tables with its charts (PNG where Chromium drew them, and HTML)."""
    payloads = {
        path.stem: json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))
    }
    charts = {
        (name, key): chart_html(name, key, rows, (payload.get("charts") or {}).get(key))
        for name, payload in payloads.items()
        for key, rows in _tables(payload)
    }
    drawn = set(render_pngs())
    parts = [
        "# Performance",
        "",
        "Generated by `make bench` (`benchmarks/run_all.py`) from `benchmarks/results/*.json`; every",
        "ratio compares dmlviz with the alternative measured in the same process on the same data,",
        "on a 2-core CPU (each benchmark's machine is given under its name).",
        "",
        "## Headlines",
        "",
        headline_table(payloads),
        "",
        "The raw tables of every benchmark follow, one section each, with a chart where one helps.",
        "",
    ]
    for name, payload in payloads.items():
        parts += [f"## {name}", ""]
        if payload.get("description"):
            parts += [str(payload["description"]), ""]
        machine = payload.get("machine") or {}
        if machine:
            facts = ", ".join(f"{k} {v}" for k, v in machine.items() if not isinstance(v, dict))
            parts += [f"Machine: {facts}.", ""]
        if outcome and name in outcome and outcome[name] != "ok":
            parts += [f"**Last run {outcome[name]}: the numbers below are older.**", ""]
        for key, rows in _tables(payload):
            parts += [f"### {key}", "", markdown_table(rows), ""]
            chart = charts[(name, key)]
            if chart and chart.with_suffix(".png") in drawn:
                parts += [f"![{name}: {key}](performance/{chart.with_suffix('.png').name})", ""]
            if chart:
                parts += [f"Interactive chart: [{chart.name}](performance/{chart.name})", ""]
        if payload.get("notes"):
            parts += [str(payload["notes"]), ""]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(parts))
    return REPORT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; results to a temp folder")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    scripts = benchmark_scripts([s for s in args.only.split(",") if s] or None)
    if args.quick:
        with tempfile.TemporaryDirectory(prefix="dmlviz-bench-") as tmp:
            outcome = run_benchmarks(scripts, quick=True, results_dir=Path(tmp))
            missing = [s.stem for s in scripts if not (Path(tmp) / f"{s.stem}.json").exists()]
            missing = [name for name in missing if outcome[name] != "skipped"]
    else:
        RESULTS.mkdir(exist_ok=True)
        outcome = run_benchmarks(scripts, quick=False, results_dir=RESULTS)
        missing = [s.stem for s in scripts if not (RESULTS / f"{s.stem}.json").exists()]
        missing = [name for name in missing if outcome[name] != "skipped"]
        print(f"report: {write_report(RESULTS, outcome)}")
    failed = [name for name, state in outcome.items() if state not in ("ok", "skipped")]
    for name in missing:
        print(f"{name} wrote no results JSON", file=sys.stderr)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
