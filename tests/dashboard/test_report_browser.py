"""The HTML report (``dmlviz export SWEEP --out FILE.html``) in a real headless Chromium, offline:
every request other than the file itself is recorded and refused, and every chart draws."""

from __future__ import annotations

import pytest
from test_browser import WAIT_MS, chromium

from dmlviz.views.report import write_report


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def test_report_draws_offline(browser, runs_dir, tmp_path):
    report = write_report(runs_dir / "sweep", tmp_path / "report.html")
    charts = report.read_text().count('class="plotly-graph-div"')
    assert charts > 10
    requests: list[str] = []

    def refuse(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requests.append(url)
            route.abort()

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", refuse)
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
        timeout=WAIT_MS,
    )
    drawn = page.evaluate(
        "[...document.querySelectorAll('.js-plotly-plot')].filter(g => g._fullLayout).length"
    )
    images = page.evaluate(
        "[...document.querySelectorAll('.dmlviz-card img')].filter(i => i.naturalWidth > 0).length"
    )
    page.screenshot(path=str(tmp_path / "report.png"))
    page.close()
    assert drawn == charts
    assert images > 0
    assert errors == []
    assert requests == []
