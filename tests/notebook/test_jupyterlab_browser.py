"""The notebook widgets in a real JupyterLab and a real headless Chromium: notebook 01's RLL
anatomy redraws when point 7's slider moves, and a click on a lens map point (a cell added after
them, on a small imported run) makes it the query.
Screenshots go to the test's tmp_path."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAST_01_CELL = "rll_view\n"  # notebook 01 up to its RLL widget: the rest is not needed here

# Scroll the lens map into view; the screen position of the first point of the lens map's first clickable trace, and its sample.
CLICK_TARGET = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.offsetParent &&
    (g._fullData || []).some(t => t.customdata && t.customdata.length > 3));
  gd.scrollIntoView({block: "center"});
  const trace = gd._fullData.find(t => t.customdata && t.customdata.length > 3);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(trace.x[0]), box.top + ya._offset + ya.l2p(trace.y[0]),
          trace.customdata[0][0]];
}"""
# What the heatmaps of the page show now, to tell a redraw.
HEATMAPS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => g.data && g.data[0] && g.data[0].type === 'heatmap')
  .map(g => JSON.stringify(g.data[0].z)).join('|')"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _notebook(folder: Path, run_path: Path) -> None:
    """notebook 01 up to its RLL widget, then a cell with the lens of ``run_path`` (one kernel)."""
    first = nbformat.read(ROOT / "notebooks" / "01_losses_explained.ipynb", 4)
    end = next(i for i, c in enumerate(first.cells) if c.source.endswith(LAST_01_CELL.strip()))
    lens = f"from dmlviz.runs import Run\nnotebook.lens(Run.load({str(run_path)!r}))"
    first.cells = [*first.cells[: end + 1], nbformat.v4.new_code_cell(lens)]
    nbformat.write(first, folder / "01.ipynb")


def _imported_run(folder: Path) -> Path:
    from dmlviz.evaluate import evaluate_run
    from dmlviz.runs import import_embeddings

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    np.save(
        folder / "e.npy", rng.standard_normal((4, 8))[labels] * 2 + rng.standard_normal((40, 8))
    )
    (folder / "l.txt").write_text("".join(f"c{c}\n" for c in labels))
    run = import_embeddings(folder / "run", folder / "e.npy", folder / "l.txt")
    evaluate_run(run)
    return run.path


@pytest.fixture
def lab(tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium binary: install it with `apt-get install -y chromium`")
    pytest.importorskip("playwright.sync_api")
    work = tmp_path / "lab"
    work.mkdir()
    _notebook(work, _imported_run(tmp_path))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "no JupyterLab"
                time.sleep(0.5)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def _open_and_run(page, url: str, token: str, name: str) -> None:
    page.goto(f"{url}/lab/workspaces/{name.replace('.', '-')}/tree/{name}?reset&token={token}")
    page.wait_for_function(
        f"() => window.jupyterapp?.shell.currentWidget?.context?.path === {name!r} && window"
        ".jupyterapp.shell.currentWidget.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=60_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def test_sliders_and_clicks_redraw_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token = lab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _open_and_run(page, url, token, "01.ipynb")
        handle = page.locator(".widget-slider", has_text="point 7's angle").locator(".noUi-handle")
        handle.wait_for(timeout=90_000)
        page.wait_for_function(f"() => ({HEATMAPS})().length > 0", timeout=60_000)
        handle.scroll_into_view_if_needed()
        before = page.evaluate(HEATMAPS)
        handle.focus()
        started = time.perf_counter()
        for _ in range(20):  # 20 steps of 0.05 rad: point 7 leaves class 0
            page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => ({HEATMAPS})() !== {json.dumps(before)}", timeout=30_000)
        slider_s = time.perf_counter() - started
        page.screenshot(path=str(tmp_path / "01-slider.png"))

        try:
            page.wait_for_function(
                f"() => {{ try {{ return ({CLICK_TARGET})(); }} catch (e) {{ }} }}", timeout=60_000
            )
        finally:
            page.screenshot(path=str(tmp_path / "lens-ready.png"))
        x, y, sample = page.evaluate(CLICK_TARGET)
        started = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_selector(f"b:text-is('query #{sample}')", timeout=30_000)
        click_s = time.perf_counter() - started
        page.screenshot(path=str(tmp_path / "lens-click.png"))
        browser.close()
    print(f"slider to redrawn heatmaps {slider_s:.2f} s, click to redrawn lens {click_s:.2f} s")
