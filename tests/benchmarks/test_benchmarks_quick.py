"""`make bench`'s runner in --quick mode: every benchmark runs and writes its results JSON.

A smoke test of the benchmarks themselves (no timing asserts); the quick results go to a temporary
folder, so the measured numbers in benchmarks/results stay untouched.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from run_all import benchmark_scripts, write_report
from shared_files import HANG_GUARD_S, REPO

WORKERS = 2  # benchmark runners at once


@pytest.mark.slow
def test_every_benchmark_runs_quick_and_writes_its_json(tmp_path):
    names = [p.stem for p in benchmark_scripts() if p.stem != "loss_speed"]  # tested on its own
    assert {"eval_speed", "train_speed", "umap_speed", "dashboard_latency", "demo_time"} <= set(
        names
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Each benchmark runs one thread: two runners, each with every other one, use both cores of
    # the 2-core test machines (its output to a file: a full pipe would stall a runner).
    runners = []
    for i in range(WORKERS):
        log = (tmp_path / f"runner-{i}.log").open("w")
        command = [sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--quick", "--only",
                   ",".join(names[i::WORKERS])]  # fmt: skip
        runners.append((subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log), log))
    try:
        codes = [runner.wait(timeout=HANG_GUARD_S) for runner, _ in runners]
    finally:
        for runner, log in runners:
            if runner.poll() is None:
                runner.kill()
            log.close()
    logs = [Path(log.name).read_text() for _, log in runners]
    for code, text in zip(codes, logs, strict=True):
        assert code == 0, text[-6000:]
    output = "".join(logs)
    for name in names:
        assert f"== {name} (quick)" in output


def test_report_renders_tables_from_results(tmp_path, monkeypatch):
    import run_all

    (tmp_path / "toy.json").write_text(
        '{"description": "A toy.", "rows": [{"n": 1, "ours_s": 0.5, "ratio": 2.0}]}'
    )
    monkeypatch.setattr(run_all, "REPORT", tmp_path / "performance.md")
    monkeypatch.setattr(run_all, "CHARTS", tmp_path / "charts")
    text = write_report(tmp_path).read_text()
    assert "## toy" in text and "| n | ours_s | ratio |" in text and "| 1 | 0.5 | 2 |" in text
    assert (tmp_path / "charts" / "toy_rows.html").exists()


def test_report_opens_with_headlines_and_draws_png_charts(tmp_path, monkeypatch):
    """The report starts with the headline table (a measured row in words, a missing benchmark
    said so), and each chart is a PNG a code host can show, beside its interactive HTML."""
    import shutil

    import run_all

    (tmp_path / "loss_speed.json").write_text(
        '{"contextual": [{"n": 1024, "speedup": 2.5, "loss_abs_diff": 0.0, "ours_ms": 1.0}]}'
    )
    monkeypatch.setattr(run_all, "REPORT", tmp_path / "performance.md")
    monkeypatch.setattr(run_all, "CHARTS", tmp_path / "charts")
    text = write_report(tmp_path).read_text()
    headlines = text.split("## Headlines", 1)[1].split("\n## ", 1)[0]
    assert "2.5x faster than a transcription of the authors' code" in headlines
    assert "| Ranked List Loss, batch of 1,024 | not measured yet |" in headlines
    assert text.index("## Headlines") < text.index("## loss_speed")
    if not (shutil.which("chromium") or os.path.exists("/usr/bin/chromium")):
        pytest.skip("no Chromium: the PNG charts are not drawn here")
    png = tmp_path / "charts" / "loss_speed_contextual.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "![loss_speed: contextual](performance/loss_speed_contextual.png)" in text
