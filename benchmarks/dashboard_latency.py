"""Dashboard latency: the Embedding map's first paint with a warm cache, and a new query in the
Query lens, measured with Streamlit's AppTest (server-side script time, no browser) at 10k and 50k
points.

A synthetic run is written per size: 64-d unit embeddings around 100 class centres, its test split
evaluated (exact top-20 neighbours, per-query AP@R) and mapped with PCA, exactly the files a trained
run has. The config names the digits dataset so the pages load a real dataset; samples past its
896 test images get placeholder thumbnails, which the lens encodes and caches like real ones.

* ``map_first_paint``: a new session opens the map page after another session has filled the
  caches (targets: under 2 s at 50k points);
* ``lens_new_query``: in an open lens page, typing a new query index (target: under 200 ms);
* ``map_spec_mb``: the size of the map's plotly spec that goes to the browser.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_info, parse_args, time_fn, write_result

from dmlviz.evaluate import retrieval_metrics
from dmlviz.project import project_run
from dmlviz.runs import Run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
CLASSES = 100
DIM = 64


def make_run(root: Path, n: int) -> Run:
    """A synthetic evaluated, PCA-mapped run of ``n`` test samples."""
    rng = np.random.default_rng(0)
    labels = np.sort(rng.integers(0, CLASSES, n))
    centres = rng.standard_normal((CLASSES, DIM)).astype(np.float32)
    embeddings = centres[labels] + 0.9 * rng.standard_normal((n, DIM)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    config = {
        "name": f"synthetic-{n}",
        "dataset": "digits",
        "protocol": "classes",
        "model": "mlp",
        "embedding_dim": DIM,
        "loss": "contextual",
        "noise_rate": 0.0,
        "noise_kind": "symmetric",
        "seed": 0,
    }
    run = Run.create(root / f"synthetic-{n}", config)
    run.save_embeddings("test", embeddings, labels)
    result = retrieval_metrics(embeddings, labels, top_k=20, clustering=False)
    run.save_eval("test", result.metrics, result.per_query, result.neighbours, result.similarities)
    project_run(run, splits=("test",), methods=("pca",))
    run.set_status("finished")
    return run


def session(run: Run, page: str | None = None):
    """A new AppTest session on ``run`` (its first page run untimed), switched to ``page``."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()
    app.session_state["run"] = str(run.path)
    if page:
        app.switch_page(f"app_pages/{page}.py")
    return app


def measure(run: Run, n: int, reps: int) -> dict:
    """Time the map's first paint in fresh sessions and new lens queries in one session."""
    session(run, "map").run()  # fills the caches (dataset, split, map frame)
    paints = []
    for _ in range(reps):
        app = session(run, "map")
        start = time.perf_counter()
        app.run()
        paints.append(time.perf_counter() - start)
        assert not app.exception, app.exception
    spec = app.get("plotly_chart")[0].proto.spec
    lens = session(run, "lens")
    lens.run()
    queries = iter(np.random.default_rng(1).permutation(n))

    def new_query() -> None:
        lens.number_input(key="lens_index").set_value(int(next(queries))).run()

    timing = time_fn(new_query, warmup=1, reps=reps)
    assert not lens.exception, lens.exception
    quartiles = statistics.quantiles(paints, n=4) if len(paints) > 1 else [paints[0]] * 3
    return {
        "points": n,
        "map_first_paint_s": statistics.median(paints),
        "map_first_paint_iqr_s": quartiles[2] - quartiles[0],
        "lens_new_query_s": timing["median_s"],
        "lens_new_query_iqr_s": timing["iqr_s"],
        "reps": reps,
        "map_spec_mb": len(spec.encode()) / 2**20,
        "map_traces": len(json.loads(spec)["data"]),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes, reps = ([1_000], 1) if args.quick else ([10_000, 50_000], 7)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dmlviz-dash-bench-") as tmp:
        os.environ["DMLVIZ_RUNS"] = tmp
        for n in sizes:
            start = time.perf_counter()
            run = make_run(Path(tmp), n)
            setup = time.perf_counter() - start
            row = measure(run, n, reps)
            row["setup_s"] = setup
            rows.append(row)
            print(
                f"{n:>6} points: map first paint {row['map_first_paint_s'] * 1e3:.0f} ms, "
                f"lens new query {row['lens_new_query_s'] * 1e3:.0f} ms, "
                f"map spec {row['map_spec_mb']:.2f} MB",
                flush=True,
            )
    write_result(
        "dashboard_latency",
        {
            "description": __doc__.split("\n\n")[0].replace("\n", " "),
            "machine": machine_info(),
            "latency": rows,
            "targets": {"map_first_paint_s": 2.0, "lens_new_query_s": 0.2},
            "charts": {"latency": {"x": "points", "y": ["map_first_paint_s", "lens_new_query_s"]}},
            "notes": (
                "AppTest times the server side of a rerun (script, caches, figure and table "
                "building, serialisation); the browser's WebGL drawing of the map comes on top. "
                "Each run page is timed in a fresh session after a first session filled the caches."
            ),
        },
    )


if __name__ == "__main__":
    main()
