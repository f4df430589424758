"""Bring-your-own-embeddings at scale: ``dmlviz import``, ``evaluate`` and ``project`` of 100k x 512
embeddings with 100k image paths, then the dashboard's first paint of that run in headless Chromium.

The data is synthetic, written to a temporary folder (``--folder``: a kept one): classes of 10
samples, each a unit vector near its class centre (float32 ``.npy``), labels one per line, and
image paths that point at 100 distinct 32 px PNGs (many samples share a file, as thumbnails only
need one). ``--n`` and ``--dim`` change the size (``--n 1000000 --dim 256 --approximate --methods
pca --result import_scale_1m``: the million-point run of benchmarks/results/import_scale_1m.json);
``--approximate`` evaluates with ``dmlviz evaluate --approximate`` and then, with
``--check-sample``, compares its metrics with the exact ones on the first samples of the set.

Each step runs in a fresh process (``python -m dmlviz ...``, the user's command) and reports its
wall seconds and its peak resident memory (``ru_maxrss``). The dashboard is then started on the
run and three pages are opened in headless Chromium, one after the other in one browser session,
each timed from navigation until Streamlit stops running and the page's content is drawn: Runs
(the default page), Query lens (the worst query's ranked list with thumbnails) and Embedding map
(100k points). ``--quick``: 2k samples, PCA only. Each step records the 1-minute load average
as it began and ended: the machine is shared, so the seconds are upper bounds.
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

PER_CLASS = 10
DISTINCT_IMAGES = 100
DESCRIPTION = (
    "Bring your own embeddings at scale: `dmlviz import`, `evaluate` and `project` of n x dim "
    "float32 embeddings (classes of 10) with n image paths, each step a fresh process "
    "(wall seconds of the command, peak resident memory), then the first paint of three "
    "dashboard pages of that run in headless Chromium, opened one after the other in one "
    "session with the server's caches empty: from navigation until the page's marker element "
    "is shown (Runs: its title; Query lens: the first thumbnail card; Embedding map: the plot) "
    "and Streamlit has stopped running."
)
NOTES = (
    "evaluate is {search} (exact: every pair's similarity, the full ranking for mAP; approximate: "
    "an HNSW graph, candidates re-ranked exactly, see dmlviz/evaluate/knn.py). project computes "
    "{methods} ({map_s} s for the first) plus trustworthiness. The machine was shared with other "
    "jobs during the run (load_avg: the 1-minute load average on 2 cores as each step began and "
    "ended), so the seconds are upper bounds."
)

# Runs one dmlviz command in this process and prints, as its last line, its wall seconds, peak RSS
# (MiB), exit code and CPU seconds (user + system, all threads: less inflated by a busy machine).
STEP = """
import resource, sys, time
from dmlviz.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print("STEP", seconds, usage.ru_maxrss / 1024, code, usage.ru_utime + usage.ru_stime)
"""

# Compares approximate with exact metrics on the first N samples (whole classes) of an embeddings
# file: prints one JSON line of the largest difference and each side's metrics.
ACCURACY = """
import json, sys
import numpy as np
from dmlviz.evaluate.retrieval import retrieval_metrics
path, n = sys.argv[1], int(sys.argv[2])
emb = np.load(path, mmap_mode="r")[:n]
labels = np.array(open(sys.argv[3]).read().split()[:n])
sides = {exact: retrieval_metrics(emb, labels, exact=exact, clustering="off").metrics
         for exact in (True, False)}
names = ("recall@1", "recall@2", "recall@4", "recall@8", "precision@1", "r_precision", "map@r")
diff = max(abs(sides[True][m] - sides[False][m]) for m in names)
print("ACCURACY", json.dumps({"sample": n, "max_abs_diff": round(diff, 5),
      "exact": {m: round(sides[True][m], 4) for m in names},
      "approximate": {m: round(sides[False][m], 4) for m in names}}))
"""


def make_files(folder: Path, n: int, dim: int) -> dict[str, Path]:
    """Synthetic embeddings, labels and image paths of ``n`` samples in ``folder``, the
    embeddings written in blocks (a million rows never sit in memory twice)."""
    rng = np.random.default_rng(0)
    classes = n // PER_CLASS
    labels = np.repeat(np.arange(classes), PER_CLASS)
    centres = rng.standard_normal((classes, dim), dtype=np.float32)
    embeddings = np.lib.format.open_memmap(
        folder / "test.npy", mode="w+", dtype=np.float32, shape=(n, dim)
    )
    for start in range(0, n, 100_000):
        rows = labels[start : start + 100_000]
        noise = rng.standard_normal((len(rows), dim), dtype=np.float32)
        embeddings[start : start + len(rows)] = centres[rows] + 1.2 * noise
    embeddings.flush()
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


def load() -> float:
    """The 1-minute load average (other jobs share the machine)."""
    return round(os.getloadavg()[0], 1)


def step(*args: str) -> dict:
    """Run ``dmlviz ARGS`` in a fresh process; its seconds, peak memory and the load average."""
    before = load()
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
    _, seconds, peak_mib, _, cpu = last[-1].split()
    return {
        "seconds": round(float(seconds), 2),
        "cpu_seconds": round(float(cpu), 2),
        "peak_rss_mib": round(float(peak_mib)),
        "load_avg": [before, load()],
    }


def accuracy(files: dict[str, Path], sample: int) -> dict:
    """Approximate against exact metrics on the first ``sample`` samples (a fresh process)."""
    result = subprocess.run(
        [sys.executable, "-c", ACCURACY, str(files["embeddings"]), str(sample),
         str(files["labels"])],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = [line for line in result.stdout.splitlines() if line.startswith("ACCURACY")][-1]
    return json.loads(line.split(" ", 1)[1])


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


def options(parser) -> None:
    """The sizes and steps of a full run (``--quick`` overrides them)."""
    parser.add_argument("--n", type=int, default=100_000, help="samples (default 100000)")
    parser.add_argument("--dim", type=int, default=512, help="dimensions (default 512)")
    parser.add_argument("--methods", default="umap,pca", help="maps to project (default umap,pca)")
    parser.add_argument(
        "--approximate", action="store_true", help="dmlviz evaluate --approximate (default exact)"
    )
    parser.add_argument(
        "--check-sample",
        type=int,
        default=0,
        help="with --approximate: compare with exact metrics on this many first samples",
    )
    parser.add_argument(
        "--folder", type=Path, help="keep the data and the run here (default: temp)"
    )
    parser.add_argument("--result", default="import_scale", help="results file name")


def measure(folder: Path, args) -> dict:
    """Make the data in ``folder``, run every step and open the pages; the results payload."""
    n, dim, methods = args.n, args.dim, args.methods
    start = time.perf_counter()
    files = make_files(folder, n, dim)
    generate_s = time.perf_counter() - start
    run = folder / "runs" / f"imported-{n}"
    evaluate = ("evaluate", str(run), *(["--approximate"] if args.approximate else []))
    steps = {
        "import": step(
            "import", "--out", str(run), "--embeddings", str(files["embeddings"]),
            "--labels", str(files["labels"]), "--images", str(folder / "test_paths.txt"),
            "--name", f"synthetic {n} x {dim}",
        ),
        "evaluate": step(*evaluate),
        "project": step("project", str(run), "--methods", methods),
    }  # fmt: skip
    for name, numbers in steps.items():
        print(f"{name}: {numbers}", flush=True)
    sizes = {p.relative_to(run).as_posix(): p.stat().st_size for p in run.rglob("*") if p.is_file()}
    projection = json.loads(
        (run / "projections" / f"test_{methods.split(',')[0]}.json").read_text()
    )
    checked = accuracy(files, args.check_sample) if args.approximate and args.check_sample else None
    print(f"accuracy: {checked}", flush=True)
    shots = os.environ.get("DMLVIZ_BENCH_SHOTS")
    paint_load = load()
    paints = first_paints(folder / "runs", Path(shots) if shots else None)
    print(paints, flush=True)
    metrics = json.loads((run / "eval" / "test_metrics.json").read_text())
    return {
        "description": DESCRIPTION,
        "machine": machine_info(),
        "n": n,
        "dim": dim,
        "classes": n // PER_CLASS,
        "generate_s": round(generate_s, 2),
        "run_mib": round(sum(sizes.values()) / 2**20, 1),
        "steps": [{"step": f"dmlviz {name}", **numbers} for name, numbers in steps.items()],
        "evaluate_seconds_in_run": metrics.get("seconds"),
        "approximate_vs_exact": checked,
        "first_paint": [{"page": page, "seconds": seconds} for page, seconds in paints.items()],
        "first_paint_load_avg": paint_load,
        "notes": NOTES.format(
            search="approximate" if args.approximate else "exact",
            methods=methods,
            map_s=projection.get("seconds"),
        ),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], options)
    if args.quick:
        args.n, args.dim, args.methods = 2_000, 64, "pca"
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
        payload = measure(args.folder, args)
    else:
        with tempfile.TemporaryDirectory(prefix="dmlviz-import-scale-") as tmp:
            payload = measure(Path(tmp), args)
    print(write_result(args.result, payload))


if __name__ == "__main__":
    main()
