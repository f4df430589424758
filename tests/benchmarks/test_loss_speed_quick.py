"""benchmarks/loss_speed.py --quick runs and writes its results JSON (no timing asserts)."""

import json
import os
import subprocess
import sys

from shared_files import REPO


def test_loss_speed_quick_writes_its_results(tmp_path):
    env = {**os.environ, "DMLVIZ_BENCH_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    script = REPO / "benchmarks" / "loss_speed.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads((tmp_path / "loss_speed.json").read_text())
    assert payload["settings"]["quick"] is True and payload["settings"]["rounds"] >= 2
    assert {"platform", "cpu", "torch"} <= set(payload["machine"])
    assert set(payload["libraries"]) == {"torch", "numpy", "pytorch_metric_learning"}
    for row in payload["rll"]:
        assert row["ours_ms"] > 0 and row["pml_ms"] > 0 and row["speedup_vs_pml"] > 0
        assert row["loss_rel_diff_symmetric_vs_pml"] < 1e-3
    for row in payload["contextual"]:
        assert row["ours_ms"] > 0 and row["transcription_ms"] > 0 and row["pml_rll_ms"] > 0
        assert row["time_vs_pml_rll"] > 0 and row["time_vs_pml_rll_spread"] >= 0
        assert row["loss_abs_diff"] < 1e-5  # the same loss, computed with fewer products
