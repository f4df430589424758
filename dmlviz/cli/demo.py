"""``dmlviz demo``: a small digits sweep, then the dashboard on it (``make demo``).

The first call trains contextual, RLL and multi-similarity at 0, 20 and 40 % symmetric label
noise (one seed; how long it takes is ``dmlviz.experiments.spec.DEMO_TIME``); later calls reuse the
finished runs and open the dashboard at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="train a small digits sweep and open the dashboard on it",
        description=(
            "Train contextual, RLL and multi-similarity on digits at 0, 20 and 40 % symmetric "
            "label noise (reused when already done), then serve the dashboard until Ctrl-C."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the sweep folder (default runs/demo, runs/demo-quick with --quick)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="dashboard address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    parser.add_argument(
        "--no-serve", action="store_true", help="train only; do not start the dashboard"
    )
    parser.add_argument("--open", action="store_true", help="open a browser tab once it is up")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: one loss, one noise rate, one epoch"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Train (or reuse) the demo sweep, then serve the dashboard until Ctrl-C."""
    from dmlviz.experiments.folder import SUMMARY_MD
    from dmlviz.experiments.reports import is_complete
    from dmlviz.experiments.runner import install_sigterm_handler, run_sweep
    from dmlviz.experiments.spec import demo_spec, outdated

    spec = demo_spec(quick=args.quick)
    spec.jobs = args.jobs
    out = args.out or Path("runs/demo-quick" if args.quick else "runs/demo")
    if not args.no_serve:
        from dmlviz.cli.dashboard import check_port

        check_port(args.host, args.port)  # fail now, not after training
    reasons = outdated(out, spec)
    if reasons and args.out is not None:
        raise ValueError(
            f"{out} holds demo runs made with other settings ({'; '.join(reasons)}); "
            "choose another --out or delete it"
        )
    if reasons:  # the default folder, from an older dmlviz: keep it, train the current demo
        kept = _free_name(out)
        out.rename(kept)
        print(f"{out} was made with other settings ({'; '.join(reasons)}); moved it to {kept}")
    if is_complete(out, spec):
        print(f"reusing the finished demo runs in {out}", flush=True)
    else:
        install_sigterm_handler()
        started = time.perf_counter()
        frame = run_sweep(spec, out, log=lambda message: print(message, flush=True))
        print(f"demo sweep took {time.perf_counter() - started:.0f} s", flush=True)
        failed = frame[frame["state"] != "finished"]
        if len(failed):
            print(f"run(s) not finished: {', '.join(failed['name'])}", file=sys.stderr)
            return 1
    print((out / SUMMARY_MD).read_text(), flush=True)
    if args.no_serve:
        return 0
    return _serve(out, args.host, args.port, args.open)


def _free_name(folder: Path) -> Path:
    """``<folder>-old``, or ``<folder>-old-2``, ... whichever does not exist yet."""
    candidate, number = folder.with_name(f"{folder.name}-old"), 1
    while candidate.exists():
        number += 1
        candidate = folder.with_name(f"{folder.name}-old-{number}")
    return candidate


def _serve(runs_dir: Path, host: str, port: int, open_browser: bool) -> int:
    """Serve the dashboard on ``runs_dir`` until Ctrl-C: the process becomes the server."""
    from dmlviz.cli import dashboard

    return dashboard.start(runs_dir, host, port, open_browser)
