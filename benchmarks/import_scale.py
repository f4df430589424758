"""Bring-your-own-embeddings at scale: ``dmlviz import``, ``evaluate`` and ``project`` of 100k x 512
embeddings with 100k image paths, then the dashboard's first paint of that run in headless Chromium.

The data is synthetic, written to a temporary folder: 10k classes of 10 samples, each a unit
vector near its class centre (float32 ``.npy``), labels one per line, and 100k image paths that
point at 100 distinct 32 px PNGs (many samples share a file, as thumbnails only need one).

Each step runs in a fresh process (``python -m dmlviz ...``, the user's command) and reports its
wall seconds and its peak resident memory (``ru_maxrss``). The dashboard is then started on the
run and three pages are opened in headless Chromium, one after the other in one browser session,
each timed from navigation until Streamlit stops running and the page's content is drawn: Runs
(the default page), Query lens (the worst query's ranked list with thumbnails) and Embedding map
(100k points). ``--quick``: 2k samples, PCA only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's dmlviz, here and in the processes it starts
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])

from _common import chromium, machine_info, parse_args, write_result  # noqa: E402

DIM = 512
PER_CLASS = 10
DISTINCT_IMAGES = 100
DESCRIPTION = (
    "Bring your own embeddings at scale: `dmlviz import`, `evaluate` and `project` of 100k x 512 "
    "float32 embeddings (10k classes of 10) with 100k image paths, each step a fresh process "
    "(wall seconds of the command, peak resident memory), then the first paint of three "
    "dashboard pages of that run in headless Chromium, opened one after the other in one "
    "session with the server's caches empty: from navigation until the page's marker element "
    "is shown (Runs: its title; Query lens: the first thumbnail card; Embedding map: the plot) "
    "and Streamlit has stopped running."
)
NOTES = (
    "evaluate is exact: faiss search of every query against all 100k, the full ranking for "
    "mAP, and k-means for NMI/AMI over 10k classes. project computes UMAP ({map_s} s of it) and "
    "PCA plus their trustworthiness. The machine was shared with other jobs during the run "
    "(load average 6-7 on 2 cores), so the seconds are upper bounds."
)

# Runs one dmlviz command in this process and prints its peak RSS (MiB) as the last line.
STEP = """
import resource, sys, time
from dmlviz.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
print("STEP", seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, code)
"""


def make_files(folder: Path, n: int) -> dict[str, Path]:
    """Synthetic embeddings, labels and image paths of ``n`` samples in ``folder``."""
    rng = np.random.default_rng(0)
    classes = n // PER_CLASS
    labels = np.repeat(np.arange(classes), PER_CLASS)
    centres = rng.standard_normal((classes, DIM), dtype=np.float32)
    embeddings = centres[labels]
    embeddings += 1.2 * rng.standard_normal((n, DIM), dtype=np.float32)
    np.save(folder / "test.npy", embeddings)
    del embeddings
    (folder / "test_labels.txt").write_text("\n".join(f"class-{c}" for c in labels) + "\n")
    images = folder / "images"
    images.mkdir()
    for i in range(DISTINCT_IMAGES):
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        Image.new("RGB", (32, 32), colour).save(images / f"{i}.png")
    paths = [f"images/{i % DISTINCT_IMAGES}.png" for i in range(n)]
    (folder / "test_paths.txt").write_text("\n".join(paths) + "\n")
    return {"embeddings": folder / "test.npy", "labels": folder / "test_labels.txt"}


def step(*args: str) -> dict:
    """Run ``dmlviz ARGS`` in a fresh process; its seconds and peak memory."""
    result = subprocess.run(
        [sys.executable, "-c", STEP, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    last = [line for line in result.stdout.splitlines() if line.startswith("STEP")]
    if result.returncode != 0 or not last or last[-1].split()[3] != "0":
        raise RuntimeError(f"dmlviz {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    _, seconds, peak_mib, _ = last[-1].split()
    return {"seconds": round(float(seconds), 2), "peak_rss_mib": round(float(peak_mib))}


def wait_drawn(page, timeout: float = 600.0) -> float:
    """Seconds until Streamlit's status widget says nothing runs and the main area has content."""
    start = time.perf_counter()
    page.wait_for_timeout(300)
    while time.perf_counter() - start < timeout:
        running = page.locator('[data-testid="stStatusWidget"]').count()
        skeleton = page.locator('[data-testid="stSkeleton"]').count()
        main = page.locator('[data-testid="stMain"]')
        drawn = main.count() and len(main.first.inner_text().strip()) > 20
        if not running and not skeleton and drawn:
            return time.perf_counter() - start
        page.wait_for_timeout(100)
    raise TimeoutError(f"the page did not finish within {timeout} s")


@contextlib.contextmanager
def dashboard(runs: Path):
    """``dmlviz dashboard runs`` on a free port; yields its URL."""
    from dmlviz.cli.dashboard import dashboard_url, launch, wait_until_up

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = launch(runs, "127.0.0.1", port)
    url = dashboard_url("127.0.0.1", port)
    try:
        if not wait_until_up(url, process, timeout=120):
            raise RuntimeError("the dashboard did not come up")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def first_paints(runs: Path, shots: Path | None) -> dict:
    """Seconds to the first complete paint of the Runs, Query lens and Embedding map pages; empty
    when no Chromium can be launched here (``chromium`` says why)."""
    paints = {}
    with chromium("import_scale") as browser:
        if browser is None:
            return paints
        with dashboard(runs) as url:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            for name, route, ready in (
                ("runs", "", "h1:has-text('Runs')"),
                ("lens", "lens", ".dmlviz-strip .dmlviz-card"),
                ("map", "map", ".js-plotly-plot"),
            ):
                start = time.perf_counter()
                page.goto(f"{url}/{route}", timeout=600_000)
                page.wait_for_selector(ready, timeout=600_000)
                wait_drawn(page)
                paints[name] = round(time.perf_counter() - start, 2)
                if shots is not None:
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    return paints


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    n = 2_000 if args.quick else 100_000
    methods = "pca" if args.quick else "umap,pca"
    shots = os.environ.get("DMLVIZ_BENCH_SHOTS")
    with tempfile.TemporaryDirectory(prefix="dmlviz-import-scale-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        files = make_files(folder, n)
        generate_s = time.perf_counter() - start
        run = folder / "runs" / "imported-100k"
        steps = {
            "import": step(
                "import",
                "--out",
                str(run),
                "--embeddings",
                str(files["embeddings"]),
                "--labels",
                str(files["labels"]),
                "--images",
                str(folder / "test_paths.txt"),
                "--name",
                f"synthetic {n} x {DIM}",
            ),
            "evaluate": step("evaluate", str(run)),
            "project": step("project", str(run), "--methods", methods),
        }
        for name, numbers in steps.items():
            print(f"{name}: {numbers['seconds']} s, peak {numbers['peak_rss_mib']} MiB", flush=True)
        sizes = {
            p.relative_to(run).as_posix(): p.stat().st_size for p in run.rglob("*") if p.is_file()
        }
        projection = json.loads(
            (run / "projections" / f"test_{methods.split(',')[0]}.json").read_text()
        )
        paints = first_paints(folder / "runs", Path(shots) if shots else None)
        print(paints, flush=True)
    payload = {
        "description": DESCRIPTION,
        "machine": machine_info(),
        "n": n,
        "dim": DIM,
        "classes": n // PER_CLASS,
        "generate_s": round(generate_s, 2),
        "run_mib": round(sum(sizes.values()) / 2**20, 1),
        "steps": [{"step": f"dmlviz {name}", **numbers} for name, numbers in steps.items()],
        "first_paint": [{"page": page, "seconds": seconds} for page, seconds in paints.items()],
        "notes": NOTES.format(map_s=projection.get("seconds")),
    }
    print(write_result("import_scale", payload))


if __name__ == "__main__":
    main()
