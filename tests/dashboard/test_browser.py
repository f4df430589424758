"""End to end in a real headless Chromium: visit every page and find no exception or error box;
open the map, choose a query, see its ranked list; start a one-run experiment from the Noise lab
and see it finish. Screenshots go to each test's tmp_path."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
from pathlib import Path

import pytest
from shared_files import HANG_GUARD_S

WAIT_MS = HANG_GUARD_S * 1000  # playwright's waits: a hang guard, in milliseconds
CHROMIUM = shutil.which("chromium")
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


@contextlib.contextmanager
def _serve(root: Path, **options):
    """``dmlviz dashboard root`` on a free local port (``options``: ``launch``'s, such as a
    token); yields its URL."""
    from dmlviz.cli.dashboard import dashboard_url, launch, wait_until_up

    port = _free_port()
    process = launch(root, "127.0.0.1", port, **options)
    url = dashboard_url("127.0.0.1", port)
    try:
        assert wait_until_up(url, process, timeout=HANG_GUARD_S), "the dashboard did not come up"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except Exception:
            process.kill()


@pytest.fixture
def server(runs_dir):
    with _serve(runs_dir) as url:
        yield url


@contextlib.contextmanager
def chromium():
    """A headless Chromium (playwright's ``Browser``), closed afterwards; the test skips, with one
    line saying why, when none can be launched here (none on PATH, or it fails to start)."""
    how = "install it with `apt-get install -y chromium`"
    if CHROMIUM is None:
        pytest.skip(f"no chromium on PATH: {how}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        except sync_api.Error as error:
            pytest.skip(f"cannot launch {CHROMIUM} ({str(error).strip().splitlines()[0]}): {how}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


def _idle(page, timeout_ms: int = WAIT_MS) -> None:
    """Wait until Streamlit has finished running the page's script (the app's script state) and
    no spinner shows."""
    page.wait_for_timeout(300)
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )
    page.wait_for_selector("[data-testid='stSpinner']", state="detached", timeout=timeout_ms)
    page.wait_for_timeout(500)


@pytest.fixture
def clean_runs(runs_dir, tmp_path):
    """The fixture's runs and tuning study without its broken run folder (the Runs page rightly
    shows that one in an error box)."""
    root = tmp_path / "runs"
    shutil.copytree(runs_dir, root, ignore=lambda folder, names: ["broken"] * ("broken" in names))
    return root


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_in_chromium(browser, clean_runs, tmp_path):
    """Every page of the navigation opens without an exception or an error box (a screenshot of
    each in tmp_path); the noise-free first run offers its loss's noisiest run on Neighbour
    consistency, and one click shows it."""
    with _serve(clean_runs) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url, timeout=WAIT_MS)
        links = page.locator("a[data-testid='stSidebarNavLink']")
        links.first.wait_for(timeout=WAIT_MS)
        pages = [  # (title, address); a link's text is its icon's name, then its title
            (links.nth(i).inner_text().split("\n")[-1].strip(), links.nth(i).get_attribute("href"))
            for i in range(links.count())
        ]
        assert [title for title, _ in pages] == [
            "Runs",
            "Noise lab",
            "Neighbour consistency",
            "Embedding map",
            "Query lens",
            "Worst queries",
            "Replay",
            "Loss anatomy",
        ]
        problems = {}
        for number, (title, href) in enumerate(pages):
            page.goto(href if href.startswith("http") else f"{url}/{href.lstrip('/')}")
            page.wait_for_selector(f"h1:has-text('{title}')", timeout=WAIT_MS)
            _idle(page)
            slug = re.sub(r"\W+", "_", title.lower())
            page.screenshot(path=str(tmp_path / f"{number}_{slug}.png"), full_page=True)
            boxes = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
            if boxes.count():
                problems[title] = boxes.first.inner_text()[:500]
        assert not problems, problems

        page.goto(f"{url}/consistency")
        page.wait_for_selector("text=This run has no label noise", timeout=WAIT_MS)
        page.get_by_role("button", name=re.compile("Show contextual-noise40")).click()
        page.wait_for_selector(
            "text=This run has no label noise", state="detached", timeout=WAIT_MS
        )
        page.wait_for_selector("text=Detector AUROC", timeout=WAIT_MS)
        _idle(page)
        page.screenshot(path=str(tmp_path / "consistency_noisy.png"), full_page=True)
        run = page.locator("[data-testid='stSidebar'] input[aria-label='Run']")
        assert run.input_value().startswith("contextual-noise40")


@pytest.mark.browser
@pytest.mark.slow
def test_map_to_query_lens_in_chromium(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/map", timeout=WAIT_MS)
    page.wait_for_selector("h1:has-text('Embedding map')", timeout=WAIT_MS)
    page.wait_for_selector(".js-plotly-plot .scatterlayer, .js-plotly-plot canvas", timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(tmp_path / "map.png"))

    # choose a query: click a point of the map (its screen position from plotly's axes)
    x, y = page.evaluate(CLICK_TARGET)
    page.mouse.click(x, y)
    chosen = page.locator("text=is the query lens's query")
    chosen.wait_for(timeout=WAIT_MS)
    index = int(chosen.inner_text().split("#", 1)[1].split()[0])
    page.get_by_role("link", name="Open it in the query lens").click()
    page.wait_for_selector("h1:has-text('Query lens')", timeout=WAIT_MS)
    page.wait_for_selector(f"text=query #{index}", timeout=WAIT_MS)
    cards = page.locator(".dmlviz-strip").first.locator(".dmlviz-card")
    cards.first.wait_for(timeout=WAIT_MS)
    assert cards.count() == 10
    assert page.locator("text=AP@R").first.is_visible()
    page.wait_for_timeout(500)
    shot = tmp_path / "lens.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.slow
def test_noise_lab_experiment_in_chromium(browser, tmp_path):
    """From an empty runs folder: the Noise lab's form, Start, live progress, the comparison."""
    from dmlviz.experiments.launcher import cancel_experiment
    from dmlviz.experiments.state import experiment_state

    runs = tmp_path / "runs"
    runs.mkdir()
    with _serve(runs) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/noise_lab", timeout=WAIT_MS)
        page.wait_for_selector("h1:has-text('Noise lab')", timeout=WAIT_MS)
        page.wait_for_selector("text=Estimated time on this machine", timeout=WAIT_MS)
        for loss in ("Contextual", "Multi-Similarity"):  # keep the Ranked List Loss only
            page.get_by_role("button", name=f"Remove {loss}").click()
            page.wait_for_selector(f"[aria-label='Remove {loss}']", state="detached")
        for label, value in (("Noise rates", "0"), ("Epochs", "1")):
            field = page.get_by_label(label, exact=True)
            field.fill(value)
            field.press("Enter")
        page.locator("[data-testid='stCheckbox']").get_by_text("UMAP maps").click()
        page.wait_for_selector("text=for 1 run (1 loss", timeout=WAIT_MS)
        page.wait_for_selector("text=1 epoch each", timeout=WAIT_MS)
        page.wait_for_selector("text=evaluation and PCA maps.", timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / "lab_form.png"), full_page=True)
        page.get_by_role("button", name="Start").click()
        try:
            page.wait_for_selector("text=runs done", timeout=WAIT_MS)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "lab_running.png"), full_page=True)
            page.wait_for_selector("text=1 of 1", timeout=WAIT_MS)
            page.wait_for_selector("text=At 0 % symmetric noise", timeout=WAIT_MS)
            page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
            page.get_by_text("Comparison", exact=True).scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            shot = tmp_path / "lab_done.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            (folder,) = [p for p in runs.iterdir() if p.name.startswith("lab-digits-")]
            assert experiment_state(folder)["phase"] == "finished"
            # the run joined the sidebar's run list: the other pages show it
            run = page.locator("[data-testid='stSidebar'] input[aria-label='Run']")
            assert run.input_value().startswith("rll-noise0-seed0")
        finally:
            for folder in runs.iterdir():
                if experiment_state(folder)["alive"]:
                    cancel_experiment(folder)


@pytest.mark.browser
def test_no_request_leaves_this_machine(browser, clean_runs):
    """Offline use: the pages and their icons (the favicon too) load from the dashboard alone;
    any request to another host than loopback fails the test."""
    from urllib.parse import urlsplit

    with _serve(clean_runs) as url:
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        for path in ("", "noise_lab", "anatomy"):
            page.goto(f"{url}/{path}", timeout=60_000)
            page.locator("h1").first.wait_for(timeout=60_000)
            _idle(page)
        remote = [address for address in requested
                  if urlsplit(address).scheme in ("http", "https", "ws", "wss")
                  and urlsplit(address).hostname not in ("127.0.0.1", "localhost", "::1")]  # fmt: skip
        assert requested and not remote, remote


@pytest.mark.browser
def test_a_dashboard_with_a_token_shows_nothing_without_it(browser, clean_runs):
    """Served with a token, a visit without it (or with another) gets the refusal page and no
    navigation; the URL with it gets the app, which keeps it across pages."""
    token = "test-token-1234"
    with _serve(clean_runs, token=token) as url:
        page = browser.new_page()
        for address in (url, f"{url}/noise_lab", f"{url}/?token=wrong-token-99"):
            page.goto(address, timeout=60_000)
            page.wait_for_selector("h1:has-text('Token required')", timeout=60_000)
            _idle(page)
            assert page.locator("a[data-testid='stSidebarNavLink']").count() == 0
            assert "open the URL that dmlviz dashboard printed" in page.inner_text("body")
        page.goto(f"{url}/?token={token}", timeout=60_000)
        links = page.locator("a[data-testid='stSidebarNavLink']")
        links.first.wait_for(timeout=60_000)
        links.nth(1).click()  # Noise lab
        page.wait_for_selector("h1:has-text('Noise lab')", timeout=60_000)
        _idle(page)
        assert f"token={token}" in page.url
        page.reload()
        page.wait_for_selector("h1:has-text('Noise lab')", timeout=60_000)
