"""End to end in a real headless Chromium: start the server, open the map, choose a query, see
its ranked list, save a screenshot."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


# Screen position of the first point of the map's first trace, from plotly's own axis mapping.
CLICK_TARGET = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const trace = gd._fullData[0];
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(trace.x[0]), box.top + ya._offset + ya.l2p(trace.y[0])];
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(runs_dir):
    from dmlviz.cli.dashboard import dashboard_url, launch, wait_until_up

    port = _free_port()
    process = launch(runs_dir, "127.0.0.1", port)
    url = dashboard_url("127.0.0.1", port)
    try:
        assert wait_until_up(url, process, timeout=60), "the dashboard did not come up"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except Exception:
            process.kill()


@pytest.mark.browser
@pytest.mark.slow
def test_map_to_query_lens_in_chromium(server, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium binary: install it with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{server}/map", timeout=60_000)
            page.wait_for_selector("h1:has-text('Embedding map')", timeout=60_000)
            page.wait_for_selector(
                ".js-plotly-plot .scatterlayer, .js-plotly-plot canvas", timeout=60_000
            )
            page.wait_for_timeout(1000)
            page.screenshot(path=str(tmp_path / "map.png"))

            # choose a query: click a point of the map (its screen position from plotly's axes)
            x, y = page.evaluate(CLICK_TARGET)
            page.mouse.click(x, y)
            chosen = page.locator("text=is the query lens's query")
            chosen.wait_for(timeout=60_000)
            index = int(chosen.inner_text().split("#", 1)[1].split()[0])
            page.get_by_role("link", name="Open it in the query lens").click()
            page.wait_for_selector("h1:has-text('Query lens')", timeout=60_000)
            page.wait_for_selector(f"text=query #{index}", timeout=60_000)
            cards = page.locator(".dmlviz-strip").first.locator(".dmlviz-card")
            cards.first.wait_for(timeout=30_000)
            assert cards.count() == 10
            assert page.locator("text=AP@R").first.is_visible()
            page.wait_for_timeout(500)
            shot = tmp_path / "lens.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
