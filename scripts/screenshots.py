"""Take the README's dashboard pictures: the tour after ``make demo``, in headless Chromium.

Usage: ``.venv/bin/python scripts/screenshots.py [RUNS_DIR] [--out docs/images]``

RUNS_DIR (default ``runs/demo``) must hold the demo sweep (``dmlviz demo --no-serve`` makes it).
The script serves the dashboard on a free local port and walks the README's tour as a person would,
in one browser session: the Runs page, the 40 % noise contextual run picked in the sidebar (its
embedding map coloured by flipped label), Worst queries, the worst query in the Query lens, and
Neighbour consistency. Each page is saved as a PNG of at most ``WIDTH`` pixels across with a
palette of 256 colours, so the pictures stay small enough to commit. Needs playwright and a
Chromium (``/usr/bin/chromium`` or ``chromium`` on the PATH).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import socket
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1000  # pixels across of a saved picture
VIEWPORT = {"width": 1400, "height": 1000}
NOISY_RUN = "contextual-noise40"  # the demo run the tour inspects
# (file name, sidebar link, text that shows the page has drawn its content)
TOUR = (
    ("1-runs.png", "Runs", "MAP@R"),
    ("2-noisy-run-map.png", "Embedding map", "Colour by"),
    ("3-worst-queries.png", "Worst queries", "Queries shown"),
    ("4-query-lens.png", "Query lens", "AP@R"),
    ("5-neighbour-consistency.png", "Neighbour consistency", "Detector AUROC"),
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_dir", nargs="?", type=Path, default=Path("runs/demo"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("screenshots: no chromium binary (apt-get install -y chromium)", file=sys.stderr)
        return 2
    if not any(args.runs_dir.glob(f"{NOISY_RUN}*")):
        print(f"screenshots: {args.runs_dir} holds no {NOISY_RUN} run; make the demo runs with "
              f"`dmlviz demo --no-serve --out {args.runs_dir}`", file=sys.stderr)  # fmt: skip
        return 2
    from playwright.sync_api import sync_playwright

    from dmlviz.cli.dashboard import dashboard_url, launch, wait_until_up

    port = _free_port()
    server = launch(args.runs_dir, "127.0.0.1", port)
    url = dashboard_url("127.0.0.1", port)
    shots: dict[str, bytes] = {}
    try:
        if not wait_until_up(url, server, timeout=90):
            print("screenshots: the dashboard did not come up", file=sys.stderr)
            return 1
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url, timeout=90_000)
            for number, (name, link, ready) in enumerate(TOUR):
                if number == 1:
                    _pick_run(page, NOISY_RUN)
                page.locator("a[data-testid='stSidebarNavLink']", has_text=link).click()
                page.wait_for_selector(f"h1:has-text('{link}')", timeout=90_000)
                page.get_by_text(ready).first.wait_for(timeout=90_000)
                _idle(page)
                shots[name] = page.screenshot(full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, png in shots.items():
        _save_small(png, args.out / name)
    total = sum((args.out / name).stat().st_size for name in shots)
    print(f"{len(shots)} pictures in {args.out}, {total / 1e6:.2f} MB in all")
    return 0


def _pick_run(page, name: str) -> None:
    """Choose the run whose label starts with ``name`` in the sidebar's Run picker."""
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=re.compile(re.escape(name))).first.click()
    _idle(page)


def _idle(page, timeout_ms: int = 90_000) -> None:
    """Wait until Streamlit has run the page's script and no spinner shows, then let charts draw."""
    page.wait_for_timeout(300)
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )
    page.wait_for_selector("[data-testid='stSpinner']", state="detached", timeout=timeout_ms)
    page.wait_for_timeout(1500)


def _save_small(png: bytes, path: Path) -> None:
    """``png`` scaled to ``WIDTH`` pixels across, 256 colours, written via a temp file."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    temp = path.with_name(f".{path.name}.tmp")
    image.save(temp, format="PNG", optimize=True)
    temp.replace(path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
