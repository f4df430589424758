"""Helpers every benchmark shares: timing, machine facts, command line, and writing the results JSON.

A benchmark script calls ``parse_args`` (``--quick`` = a smoke run of a few seconds), times with
``time_fn`` (``time_fns`` to compare several functions fairly), and ends with
``write_result(name, payload)``, which writes ``benchmarks/results/<name>.json`` (or
``$DMLVIZ_BENCH_RESULTS/<name>.json``, where ``run_all.py`` points quick runs) atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dmlviz.runs import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"
SKIPPED = 77  # a benchmark's exit status when it cannot run here (it says why in one line)


@contextlib.contextmanager
def chromium(benchmark: str) -> Iterator[object | None]:
    """A headless Chromium (playwright's sync API ``Browser``, software WebGL) for a benchmark's
    browser part, closed afterwards; ``None``, after one line saying why and how to fix it, when
    none can be launched here (no ``chromium`` on PATH, playwright absent, or the launch fails)."""
    how = "install it with `apt-get install -y chromium`"
    path = shutil.which("chromium")
    if path is None or importlib.util.find_spec("playwright") is None:
        missing = "no chromium on PATH" if path is None else "playwright is not installed"
        print(f"{benchmark}: browser part skipped: {missing}: {how}", flush=True)
        yield None
        return
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
        except Error as error:
            reason = str(error).strip().splitlines()[0]
            print(f"{benchmark}: browser part skipped: cannot launch {path} ({reason}): {how}")
            yield None
            return
        try:
            yield browser
        finally:
            browser.close()


def _synchronize() -> None:
    """Wait for queued GPU work, so a timing covers it (no-op without CUDA in use)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], object], warmup: int = 3, reps: int = 20) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``reps`` times timed.

    Returns ``{"median_s", "iqr_s", "reps"}``: the median wall time of one call and the
    interquartile range of the ``reps`` times, in seconds.
    """
    return time_fns({"fn": fn}, warmup, reps)["fn"]


def time_fns(fns: dict[str, Callable[[], object]], warmup: int = 3, reps: int = 20) -> dict:
    """``time_fn`` for several functions at once, their calls interleaved, so that a change in the
    machine's load during the measurement hits every one alike and their ratios stay fair.

    Returns ``{name: {"median_s", "iqr_s", "reps"}}``.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    _synchronize()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            _synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: _summary(values) for name, values in times.items()}


def _summary(times: list[float]) -> dict:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {
        "median_s": statistics.median(times),
        "iqr_s": quartiles[2] - quartiles[0],
        "reps": len(times),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Facts about where the numbers were measured: CPU, cores, torch threads, GPU, versions."""
    import torch

    import dmlviz

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "dmlviz": dmlviz.__version__,
    }
    return info


def parse_args(
    description: str, options: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The benchmark command line: ``--quick`` for a smoke run (tiny sizes, few repetitions), plus
    the benchmark's own options where ``options`` adds them to the parser."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run in a few seconds; the numbers mean nothing"
    )
    if options is not None:
        options(parser)
    return parser.parse_args()


def write_result(name: str, payload: dict) -> Path:
    """Write ``payload`` as ``<results folder>/<name>.json`` atomically and return its path."""
    folder = Path(os.environ.get("DMLVIZ_BENCH_RESULTS", RESULTS))
    path = folder / f"{name}.json"
    atomic_write_json(path, payload)
    return path
