"""`make bench`'s runner in --quick mode: every benchmark runs and writes its results JSON.

A smoke test of the benchmarks themselves (no timing asserts); the quick results go to a temporary
folder, so the measured numbers in benchmarks/results stay untouched.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_files import HANG_GUARD_S, REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from run_all import benchmark_scripts, write_report  # noqa: E402

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
