"""Embedding map at scale: first paint of the dashboard's map page in headless Chromium at 50k and
200k points, against drawing every point, and a click on a point making it the lens query.

A synthetic run per size holds test embeddings (16-d, 1,000 classes) and precomputed UMAP/PCA
coordinates (class blobs): the paint does not depend on how the coordinates were made. Each load
is timed from navigation until plotly has drawn the chart and Streamlit has stopped running;
the first load of a server fills its caches (``cold``), the median of the next ``REPS`` is
``warm``. The bytes the browser receives over Streamlit's websocket are counted per load.

Drawing paths, each served the same frame by a small Streamlit app (``CANDIDATE_APP``):

* ``one point``: a map of one point: what Streamlit and plotly cost before any data;
* ``all points``: every point in one WebGL trace (``map_figure(max_points=None)``), as the map
  was drawn before; the alternative;
* ``sample Nk + density``: a seeded sample of N thousand points over a density heatmap of all
  points; the map page draws ``MAX_MAP_POINTS`` (``map_figure``'s default).

Then the map page itself (``map page``): its loads, a click on a drawn point (the page must name
that point's sample as the lens query) and a box dragged over the map (``box_listed``: the
samples the page lists; ``box_inside``: those inside the box, drawn or not, counted here from
the stored coordinates). ``map_file_mb`` / ``map_read_s``: the stored UMAP map's size and the
time to read it. ``--quick``: 5k points, one load each. Where no Chromium can be launched it says
so in one line and ends (exit ``SKIPPED``), leaving the last results as they were.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])

from _common import SKIPPED, chromium, machine_info, parse_args, time_fn, write_result  # noqa: E402
from import_scale import dashboard, wait_drawn  # noqa: E402

from dmlviz.runs import Run, projection_file  # noqa: E402
from dmlviz.views.embedding_map import MAX_MAP_POINTS  # noqa: E402

CLASSES = 1_000
DIM = 16
REPS = 3
NOTES = (
    "Synthetic runs of 1,000 classes with stored maps; each path served the same frame by a small "
    "Streamlit app, timed from navigation to a drawn, idle page in headless Chromium (software "
    "WebGL); warm = median of 3 loads after a cold one. 'one point' is the floor every path "
    "pays (Streamlit's page and plotly.js in a new tab). The map page draws a random "
    "MAX_MAP_POINTS over a density heatmap of all points; box_listed against box_inside: a box "
    "dragged on the page lists every sample inside it, not only the drawn ones. Load average "
    "{load} (1, 5, 15 min) at the end, on 2 cores shared with other jobs: the seconds are upper "
    "bounds, the ratios hold."
)
CANDIDATES = {  # name -> max_points (None: every point; 0: a map of one point)
    "one point (the floor)": 0,
    "all points": None,
    "sample 20k + density": 20_000,
    f"sample {MAX_MAP_POINTS // 1000}k + density (chosen)": MAX_MAP_POINTS,
}

# One drawing path on one synthetic run: ?run=PATH&max_points=M (-1: every point, 0: one point,
# -2: every point with deck.gl, timed by benchmarks/map_webgl.py); a picked sample is named.
CANDIDATE_APP = """
import streamlit as st
from dmlviz.runs import Run
from dmlviz.views.data import load_map, load_split
from dmlviz.views.deck_map import deck_chart, deck_clicked, points_layer
from dmlviz.views.embedding_map import map_figure, selected_indices

@st.cache_data(show_spinner=False)
def frame(path):
    run = Run.load(path)
    return load_map(run, "test", "umap", load_split(run, "test"), None)[0]

@st.cache_resource(show_spinner=False)
def points(path):  # as the map page keeps it
    return points_layer(frame(path), "label")

st.title("Embedding map drawing path")
chosen = int(st.query_params["max_points"])
if chosen == -2:
    run = st.query_params["run"]
    event = st.pydeck_chart(
        deck_chart(frame(run), points(run)), key="map", on_select="rerun", height=620
    )
    picked = deck_clicked(event)
else:
    shown = frame(st.query_params["run"]).head(1) if chosen == 0 else frame(st.query_params["run"])
    event = st.plotly_chart(
        map_figure(shown, "label", max_points=chosen if chosen > 0 else None),
        key="map",
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        config={"displaylogo": False, "scrollZoom": True},
    )
    picked = (selected_indices(event) or [None])[0]
if picked is not None:
    st.write(f"Picked sample {picked}")
"""
# True once plotly has drawn the chart (its full data exists and the WebGL canvas is there).
DRAWN = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  return !!(gd && gd._fullData && gd._fullData.length && gd.querySelector('canvas'));
}"""

# The screen position and sample index of a drawn point of the sample trace, one far from its
# neighbours on screen so that the click cannot land on another.
CLICK_TARGET = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const trace = gd._fullData.find(t => t.type === 'scattergl' && t.customdata);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  const n = trace.x.length, px = new Float64Array(n), py = new Float64Array(n);
  for (let i = 0; i < n; i++) { px[i] = xa.l2p(trace.x[i]); py[i] = ya.l2p(trace.y[i]); }
  let best = 0, bestGap = -1;
  for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 400))) {
    if (px[i] < 10 || py[i] < 10 || px[i] > xa._length - 10 || py[i] > ya._length - 10) continue;
    let gap = Infinity;
    for (let j = 0; j < n; j++) {
      if (j !== i) gap = Math.min(gap, Math.hypot(px[i] - px[j], py[i] - py[j]));
    }
    if (gap > bestGap) { bestGap = gap; best = i; }
  }
  const row = trace.customdata[best];
  return [box.left + xa._offset + px[best], box.top + ya._offset + py[best], Number(row[0])];
}"""


# Data coordinates of two screen positions, from plotly's own axis mapping.
TO_DATA = """([x0, y0, x1, y1]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  const data = (x, y) => [xa.p2l(x - box.left - xa._offset), ya.p2l(y - box.top - ya._offset)];
  return [data(x0, y0), data(x1, y1)];
}"""


def make_run(root: Path, n: int) -> Path:
    """A synthetic run of ``n`` test samples with stored UMAP and PCA maps (class blobs)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, n)
    config = {"name": f"map-{n}", "dataset": "digits", "protocol": "classes", "model": "mlp",
              "embedding_dim": DIM, "loss": "contextual", "noise_rate": 0.0, "seed": 0}  # fmt: skip
    run = Run.create(root / f"map-{n}", config)
    centres = rng.standard_normal((CLASSES, DIM), dtype=np.float32)
    run.save_embeddings("test", centres[labels] + rng.standard_normal((n, DIM), np.float32), labels)
    where = rng.uniform(-20, 20, (CLASSES, 2)).astype(np.float32)
    for method in ("umap", "pca"):
        coords = where[labels] + rng.standard_normal((n, 2), np.float32)
        run.save_projection("test", method, coords, {"method": method, "params": {}})
    run.set_status("finished")
    return run.path


@contextlib.contextmanager
def candidate_server():
    """``CANDIDATE_APP`` served by Streamlit on a free port; yields its URL."""
    from dmlviz.cli.dashboard import wait_until_up

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="dmlviz-map-app-") as tmp:
        script = Path(tmp) / "candidate.py"
        script.write_text(CANDIDATE_APP)
        flags = ["--server.headless", "true", "--browser.gatherUsageStats", "false",
                 "--server.fileWatcherType", "none", "--server.port", str(port),
                 "--server.address", "127.0.0.1"]  # fmt: skip
        process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), *flags])
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_until_up(url, process, timeout=120):
                raise RuntimeError("the candidate app did not come up")
            yield url
        finally:
            process.terminate()
            process.wait(15)


def timed_load(page, url: str) -> tuple[float, int]:
    """Seconds from navigation to a drawn, idle page, and the websocket bytes received."""
    received = [0]

    def count(socket_) -> None:
        socket_.on(
            "framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload))
        )

    page.on("websocket", count)
    start = time.perf_counter()
    page.goto(url, timeout=600_000)
    page.wait_for_function(DRAWN, timeout=600_000, polling=50)
    wait_drawn(page)
    seconds = time.perf_counter() - start
    page.remove_listener("websocket", count)
    return seconds, received[0]


def loads(browser, url: str, reps: int) -> dict:
    """One cold load, then ``reps`` timed loads, each in a new tab."""
    times, sizes = [], []
    for _ in range(reps + 1):
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        seconds, size = timed_load(page, url)
        page.close()
        times.append(seconds)
        sizes.append(size)
    return {
        "cold_s": round(times[0], 2),
        "warm_median_s": round(statistics.median(times[1:]), 2),
        "warm_max_s": round(max(times[1:]), 2),
        "received_mb": round(statistics.median(sizes[1:]) / 2**20, 2),
    }


def click_check(browser, url: str, run: Path, shots: Path | None) -> dict:
    """On the map page: click an isolated drawn point (the page must make its sample the query),
    then drag a box: the page must list every sample inside it, drawn or not."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    timed_load(page, f"{url}/map")
    n = len(Run.load(run).projection("test", "umap")[0])
    if shots is not None:
        page.screenshot(path=str(shots / f"map_{n}.png"), full_page=True)
    x, y, index = page.evaluate(CLICK_TARGET)
    start = time.perf_counter()
    page.mouse.click(x, y)
    page.wait_for_selector(f"text=Sample #{int(index)} is the query lens's query", timeout=60_000)
    clicked_s = time.perf_counter() - start
    wait_drawn(page)

    plot = page.locator(".js-plotly-plot").bounding_box()
    cx, cy = plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2
    page.mouse.move(cx, cy)
    page.locator(".modebar-btn[data-val='select']").first.click()
    corners = [cx - 60, cy - 60, cx + 60, cy + 60]
    page.mouse.move(corners[0], corners[1])
    page.mouse.down()
    page.mouse.move(corners[2], corners[3], steps=12)
    page.mouse.up()
    heading = page.locator("h3:has-text('selected images')")
    heading.wait_for(timeout=60_000)
    wait_drawn(page)
    listed = int(heading.inner_text().split()[0])
    (x0, y0), (x1, y1) = page.evaluate(TO_DATA, corners)
    coords = Run.load(run).projection("test", "umap")[0]
    inside = (
        (coords[:, 0] >= min(x0, x1)) & (coords[:, 0] <= max(x0, x1))
        & (coords[:, 1] >= min(y0, y1)) & (coords[:, 1] <= max(y0, y1))
    )  # fmt: skip
    if shots is not None:
        page.screenshot(path=str(shots / f"map_{n}_box.png"), full_page=True)
    page.close()
    return {
        "click_sets_query": True,
        "click_to_query_s": round(clicked_s, 2),
        "box_listed": listed,
        "box_inside": int(inside.sum()),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes, reps = ([5_000], 1) if args.quick else ([50_000, 200_000], REPS)
    shots = Path(os.environ["DMLVIZ_BENCH_SHOTS"]) if os.environ.get("DMLVIZ_BENCH_SHOTS") else None
    rows = []
    with chromium("map_paint") as browser:
        if browser is None:  # nothing to measure without a browser: the last results stay
            raise SystemExit(SKIPPED)
        with tempfile.TemporaryDirectory(prefix="dmlviz-map-paint-") as tmp:
            paths = {n: make_run(Path(tmp) / f"runs-{n}", n) for n in sizes}
            with candidate_server() as url:
                for n in sizes:
                    for name, max_points in CANDIDATES.items():
                        limit = -1 if max_points is None else max_points
                        address = f"{url}/?run={paths[n]}&max_points={limit}"
                        row = {"points": n, "path": name, **loads(browser, address, reps)}
                        print(row, flush=True)
                        rows.append(row)
            for n in sizes:
                with dashboard(paths[n].parent) as url:
                    row = {"points": n, "path": "map page", **loads(browser, f"{url}/map", reps)}
                    row.update(click_check(browser, url, paths[n], shots))
                    stored = paths[n] / projection_file("test", "umap")
                    read = time_fn(
                        lambda run=paths[n]: Run.load(run).projection("test", "umap"), 1, 5
                    )
                    row["map_file_mb"] = round(stored.stat().st_size / 2**20, 2)
                    row["map_read_s"] = round(read["median_s"], 4)
                    print(row, flush=True)
                    rows.append(row)
    for row in rows:
        same = [r for r in rows if r["points"] == row["points"] and r["path"] == "all points"]
        if same and row["path"] != "all points":
            row["ratio_to_all_points"] = round(row["warm_median_s"] / same[0]["warm_median_s"], 3)
    write_result(
        "map_paint",
        {
            "description": __doc__.split("\n\n")[0].replace("\n", " "),
            "machine": machine_info(),
            "load_average": os.getloadavg(),
            "paint": rows,
            "targets": {"warm_median_s_at_200k": 3.0},
            "charts": {"paint": {"x": "points", "y": "warm_median_s", "color": "path"}},
            "notes": NOTES.format(load=", ".join(f"{v:.1f}" for v in os.getloadavg())),
        },
    )


if __name__ == "__main__":
    main()
