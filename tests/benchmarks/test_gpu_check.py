"""`make gpu-check` on a machine without CUDA: it says so and exits 0; `make bench` skips it."""

import os
import subprocess
import sys

from run_all import benchmark_scripts
from shared_files import HANG_GUARD_S, REPO


def test_without_cuda_it_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout


def test_make_bench_does_not_run_it():
    assert "gpu_check" not in {p.stem for p in benchmark_scripts()}
