"""How long `make demo` keeps a new user waiting: the demo sweep's wall time, and a second call's.

Runs ``python -m dmlviz demo --no-serve`` twice in fresh processes into a temporary folder: the
first call trains, evaluates and maps the nine demo runs (the promise is
``dmlviz.experiments.spec.DEMO_TIME``, checked against ``DEMO_LIMIT_S``); the second finds them
finished and would open the dashboard at once. ``--quick`` runs the one-loss, one-rate, one-epoch
demo instead (a smoke test of this script).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, parse_args, write_result

from dmlviz.experiments.spec import DEMO_LIMIT_S as LIMIT_S


def run_demo(out: Path, quick: bool) -> tuple[float, float | None, str]:
    """Run the demo command once; returns (wall seconds, the sweep's own seconds or None when
    it reused finished runs, output)."""
    command = [sys.executable, "-m", "dmlviz", "demo", "--no-serve", "--out", str(out)]
    if quick:
        command.append("--quick")
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{output}")
    match = re.search(r"demo sweep took (\d+) s", output)
    return wall, float(match.group(1)) if match else None, output


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory(prefix="dmlviz-demo-") as tmp:
        out = Path(tmp) / "demo"
        first_wall, sweep_s, _ = run_demo(out, args.quick)
        second_wall, reused, output = run_demo(out, args.quick)
        if reused is not None or "reusing the finished demo runs" not in output:
            raise SystemExit(f"the second demo call did not reuse the finished runs:\n{output}")
    rows = [
        {
            "call": "first (train, evaluate, map)",
            "wall_s": round(first_wall, 1),
            "sweep_s": sweep_s,
            "limit_s": LIMIT_S,
            "within_limit": first_wall < LIMIT_S,
        },
        {
            "call": "second (reuse finished runs)",
            "wall_s": round(second_wall, 1),
            "sweep_s": None,
            "limit_s": None,
            "within_limit": None,
        },
    ]
    payload = {
        "description": (
            "Wall time of `python -m dmlviz demo --no-serve` in a fresh process: digits, "
            "contextual / RLL / multi-similarity at 0, 20 and 40 % symmetric noise, one seed, "
            "PCA and UMAP maps (UMAP's numba compilation included). The demo promises under "
            f"{LIMIT_S:.0f} s on a 2-core CPU. sweep_s is the sweep as the command timed it."
            + (
                " QUICK RUN: one loss, one rate, one epoch; the numbers mean nothing."
                if args.quick
                else ""
            )
        ),
        "machine": machine_info(),
        "calls": rows,
        "notes": (
            "The very first call after installation also fills numba's on-disk cache "
            "(`import umap` takes about 14 s once, 2 s afterwards); later first calls into a new "
            "folder are a little faster."
        ),
    }
    path = write_result("demo_time", payload)
    print(
        f"first call {first_wall:.1f} s (sweep {sweep_s} s), second {second_wall:.1f} s -> {path}"
    )


if __name__ == "__main__":
    main()
