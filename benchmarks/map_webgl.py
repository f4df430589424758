"""Embedding map, every point with deck.gl against today's sample with plotly: first paint,
hover and click in headless Chromium at 200k and 1M points.

The same synthetic runs and small Streamlit app as benchmarks/map_paint.py (``CANDIDATE_APP``):
``plotly sample 10k + density`` is what the map page draws by default above ``MAX_MAP_POINTS``
(``map_figure``), ``deck.gl every point`` what its "Draw all points" toggle draws
(``dmlviz.views.deck_map``: one ``ScatterplotLayer``, its JSON kept across reruns as the page
keeps it). Per load, in a new tab: ``paint_s`` from navigation to the chart's canvas on an idle
page, ``hover_s`` from navigation to the first tooltip over a point (the data is in and can be
picked), ``click_s`` from a click on that point to the app naming the picked sample (the map
page makes it the lens query). Loads alternate between the two paths (a cold one each, then
``REPS`` rounds) so that a busy machine slows both alike: read the ratios. Lasso and box: the
plotly map has both (over every sample, drawn or not); ``st.pydeck_chart`` selects by click only.
``--quick``: 5k points, one round. Without Chromium it says so in one line and ends (``SKIPPED``).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])

from _common import SKIPPED, chromium, machine_info, parse_args, write_result  # noqa: E402
from import_scale import wait_drawn  # noqa: E402
from map_paint import CLICK_TARGET, DRAWN, candidate_server, make_run  # noqa: E402

from dmlviz.runs import Run  # noqa: E402
from dmlviz.views.deck_map import fitted_view  # noqa: E402
from dmlviz.views.embedding_map import MAX_MAP_POINTS  # noqa: E402

REPS = 0  # one load per path and size: a deck.gl load of 1M takes minutes in software WebGL
CLICK_TIMEOUT_S = 120  # a click not picked by then counts as failed (click_s None)
NOTES = (
    "What the map page does with it: it keeps drawing the plotly sample by default at every "
    "size, and offers deck.gl (every point, hover, click to the lens) as a toggle above "
    "MAX_MAP_POINTS for browsers with a GPU. In software WebGL (this headless Chromium, like a "
    "machine without a GPU) deck.gl loses at 200k and 1M: see the ratios; click_s empty: no "
    "click reached the app within CLICK_TIMEOUT_S (120 s). Its cost is the JSON that "
    "st.pydeck_chart sends, one object per point: 11 MB at 200k, 57 MB at 1M (compact; pydeck's "
    "own indented JSON is 3x that), against about 0.4 MB for the sample; and st.pydeck_chart "
    "selects by click only, where the sampled map's lasso and box list every sample inside them, "
    "drawn or not. Load average {load} (1, 5, 15 min) at the end, on 2 cores shared with other "
    "jobs: the seconds are upper bounds, read the ratios (same run, loads of both paths in turn)."
)

# Where deck.gl's tooltip, and the plotly map's hover label, show a sample.
DECK_TOOLTIP = ".deck-tooltip"
PLOTLY_HOVER = ".hoverlayer .hovertext"
DECK_DRAWN = """() => !!document.querySelector('[data-testid="stDeckGlJsonChart"] canvas')"""
WEBGL_PATHS = {  # name -> max_points of CANDIDATE_APP (-2: deck.gl, every point)
    f"plotly sample {MAX_MAP_POINTS // 1000}k + density": MAX_MAP_POINTS,
    "deck.gl every point": -2,
}


def deck_target(page, run: Path) -> tuple[float, float]:
    """The screen position of sample 0 on the deck.gl map (its fitted first view)."""
    coords = Run.load(run).projection("test", "umap")[0]
    view = fitted_view(pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]}), 620)
    scale = 2.0**view.zoom
    box = page.locator('[data-testid="stDeckGlJsonChart"] canvas').first.bounding_box()
    x = box["x"] + box["width"] / 2 + (coords[0, 0] - view.target[0]) * scale
    y = box["y"] + box["height"] / 2 - (coords[0, 1] - view.target[1]) * scale
    return float(x), float(y)


def hover_until(page, x: float, y: float, selector: str, timeout: float = 600.0) -> bool:
    """Move the mouse onto (x, y) until ``selector`` (a tooltip) is visible (False: not within
    ``timeout`` s), moving it by a pixel every 2 s only (each move costs the browser a picking
    pass over every point)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    start = time.perf_counter()
    step = 0
    while time.perf_counter() - start < timeout:
        page.mouse.move(x + step % 2, y)
        step += 1
        try:
            page.locator(selector).first.wait_for(state="visible", timeout=2_000)
            return True
        except PlaywrightTimeout:
            continue
    return False


def webgl_load(browser, url: str, run: Path, deck: bool) -> dict:
    """One load of a drawing path in a new tab: seconds to the drawn, idle page (``paint_s``),
    to the first tooltip over a point (``hover_s``, from navigation: the data is in and
    pickable) and from a click on that point to the app naming a picked sample (``click_s``);
    None for a step that did not happen in time (the steps after it are not tried)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    start = time.perf_counter()
    page.goto(url, timeout=600_000)
    page.wait_for_function(DECK_DRAWN if deck else DRAWN, timeout=600_000, polling=50)
    wait_drawn(page)
    paint = time.perf_counter() - start
    x, y = deck_target(page, run) if deck else page.evaluate(CLICK_TARGET)[:2]
    if not hover_until(page, x, y, DECK_TOOLTIP if deck else PLOTLY_HOVER):
        page.close()
        return {"paint_s": paint, "hover_s": None, "click_s": None}
    hover = time.perf_counter() - start
    clicked = time.perf_counter()
    page.mouse.click(x, y)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector("text=Picked sample", timeout=CLICK_TIMEOUT_S * 1000)
        click = time.perf_counter() - clicked
    except PlaywrightTimeout:
        click = None  # no pick reached the app in time
    page.close()
    return {"paint_s": paint, "hover_s": hover, "click_s": click}


def webgl_paths(browser, url: str, paths: dict[int, Path], reps: int) -> list[dict]:
    """Today's plotly sample against deck.gl drawing every point, loads interleaved (a cold one
    of each, then ``reps`` rounds of both) so that the machine's load hits both alike."""
    rows = []
    for n, run in paths.items():
        times: dict[str, list[dict]] = {name: [] for name in WEBGL_PATHS}
        for _ in range(reps + 1):
            for name, chosen in WEBGL_PATHS.items():
                address = f"{url}/?run={run}&max_points={chosen}"
                times[name].append(webgl_load(browser, address, run, deck=chosen == -2))
                print(n, name, times[name][-1], flush=True)
        for name, loads_ in times.items():
            row = {"points": n, "path": name, "cold_paint_s": round(loads_[0]["paint_s"], 2)}
            for key in ("paint_s", "hover_s", "click_s"):
                warm = [t[key] for t in loads_[1:] or loads_]  # reps 0: the cold load stands in
                row[f"warm_{key}"] = None if None in warm else round(statistics.median(warm), 2)
            rows.append(row)
    for row in rows:
        base = next(r for r in rows if r["points"] == row["points"] and "plotly" in r["path"])
        for key in ("warm_paint_s", "warm_hover_s", "warm_click_s"):
            known = row[key] is not None and base[key]
            row[f"{key}_ratio_to_plotly"] = round(row[key] / base[key], 2) if known else None
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes, reps = ([5_000], 1) if args.quick else ([200_000, 1_000_000], REPS)
    with chromium("map_webgl") as browser:
        if browser is None:  # nothing to measure without a browser: the last results stay
            raise SystemExit(SKIPPED)
        with tempfile.TemporaryDirectory(prefix="dmlviz-map-webgl-") as tmp:
            paths = {n: make_run(Path(tmp) / f"runs-{n}", n) for n in sizes}
            with candidate_server() as url:
                rows = webgl_paths(browser, url, paths, reps)
    write_result(
        "map_webgl",
        {
            "description": __doc__.split("\n\n")[0].replace("\n", " "),
            "machine": machine_info(),
            "load_average": os.getloadavg(),
            "paths": rows,
            "notes": NOTES.format(load=", ".join(f"{v:.1f}" for v in os.getloadavg())),
        },
    )


if __name__ == "__main__":
    main()
