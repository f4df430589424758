"""Training many runs: one process pool for sweeps and tuning, and the sweep that uses it.

``train_many(configs, jobs, train_one)`` trains a list of configs in this process or in ``jobs``
spawned worker processes, sharing the CPU cores among them, or as Ray tasks (``executor="ray"``).
``run_sweep`` trains, evaluates and maps every run of a spec into its folder; it is resumable:
finished runs are skipped, interrupted or cancelled ones resume from their last saved epoch.
Projections are computed at the end in the sweep's own process, so UMAP's numba compilation
(30-40 s per process) is paid once.
"""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from dmlviz.experiments.folder import (
    LOCK_TOKEN_ENV,
    RUNS_CSV,
    SPEC_FILE,
    SUMMARY_CSV,
    SUMMARY_MD,
    FolderLock,
    append_progress,
    cancel_requested,
    check_out,
    evaluated,
    finished_run,
    mark_cancelled,
)
from dmlviz.experiments.reports import write_reports
from dmlviz.experiments.spec import SweepSpec, check_folder, plan, validate_spec
from dmlviz.runs import Run, atomic_write_json, is_run

Result = TypeVar("Result")


def share_threads(configs: list[dict[str, Any]], jobs: int) -> list[dict[str, Any]]:
    """``configs`` with ``num_threads`` capped at this machine's cores divided by ``jobs`` (each
    config copied; unchanged with one job)."""
    if jobs <= 1:
        return [dict(config) for config in configs]
    share = max(1, (os.cpu_count() or 1) // jobs)
    return [{**c, "num_threads": min(c.get("num_threads") or share, share)} for c in configs]


def train_many(
    configs: Sequence[Any],
    jobs: int,
    train_one: Callable[[Any], Result],
    on_done: Callable[[Any, Result], None] | None = None,
    executor: str = "local",
    address: str | None = None,
    folder: str | Path | None = None,
) -> list[Result]:
    """``train_one(config)`` for every item of ``configs``, in this process (``jobs`` 1 or a
    single item) or in ``jobs`` spawned worker processes; returns the results in ``configs``'
    order. ``on_done(config, result)`` is called in this process as each one ends (in the order
    they end). ``train_one`` must be a module-level function (or a ``functools.partial`` of one)
    so the workers can import it. ``executor`` "ray": each config is a Ray task on the cluster at
    ``address`` instead, with the resources its config asks for, writing into ``folder`` (which
    every node must see; ``dmlviz.experiments.ray_executor``)."""
    if executor == "ray":
        from dmlviz.experiments.ray_executor import run_tasks, task_resources

        return run_tasks(train_one, configs, task_resources, on_done, address, folder)
    results: list[Any] = [None] * len(configs)
    if jobs == 1 or len(configs) <= 1:
        for i, config in enumerate(configs):
            results[i] = train_one(config)
            if on_done is not None:
                on_done(config, results[i])
        return results
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(train_one, config): i for i, config in enumerate(configs)}
        for future in concurrent.futures.as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            if on_done is not None:
                on_done(configs[i], results[i])
    return results


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    log: Callable[[str], None] | None = print,
    lock_token: str | None = None,
) -> pd.DataFrame:
    """Train, evaluate and map every run of ``spec`` into ``out``; returns the runs table.

    Writes ``sweep.json``, ``progress.jsonl``, the run folders, ``runs.csv``, ``summary.csv`` and
    ``summary.md``. Holds ``folder.lock`` while it works (``FolderBusyError`` when another live
    process holds it). Runs that fail are reported in the table with state ``failed``. Before
    writing anything it refuses (``ValueError``) an ``out`` that holds something else
    (``check_out``) or a sweep of another spec, and a Ray cluster it cannot reach.
    """
    validate_spec(spec)
    out = Path(out)
    say = log or (lambda message: None)
    check_out(out, "sweep")  # before anything is written: a run, a study, a file are refused
    check_folder(spec, out)
    if spec.executor == "ray":  # an address that does not answer fails here, in seconds
        from dmlviz.experiments.ray_executor import connect

        connect(spec.address)
    lock = FolderLock(out, token=lock_token or os.environ.get(LOCK_TOKEN_ENV)).acquire()
    try:
        check_folder(spec, out)  # again under the lock: another sweep may have begun meanwhile
    except BaseException:
        lock.release()
        raise
    try:
        atomic_write_json(out / SPEC_FILE, spec.to_dict())
        configs = plan(spec)
        append_progress(
            out, {"event": "sweep_started", "pid": os.getpid(), "runs": spec.run_names()}
        )
        local = spec.executor == "local"  # Ray gives each task the cores its config asks for
        train_many(
            share_threads(configs, spec.jobs) if local else configs,
            spec.jobs,
            functools.partial(run_one, out=out),
            lambda config, result: say(_describe(result)),
            spec.executor,
            spec.address,
            out,
        )
        append_progress(out, {"event": "projecting"})
        methods = ("pca", "umap") if spec.umap else ("pca",)
        for config in configs:
            run = finished_run(out / config["name"])
            if run is not None and evaluated(run) and not cancel_requested(out, run.name):
                say(f"{run.name}: maps ({', '.join(methods)})")
                _project(out, run, methods, say)
        frame = write_reports(out, spec)
        append_progress(out, {"event": "sweep_finished"})
        say(f"wrote {out / RUNS_CSV}, {out / SUMMARY_CSV} and {out / SUMMARY_MD}")
        return frame
    except KeyboardInterrupt:
        append_progress(out, {"event": "sweep_interrupted"})
        raise
    except Exception as error:
        append_progress(out, {"event": "sweep_failed", "error": f"{type(error).__name__}: {error}"})
        raise
    finally:
        lock.release()


def _describe(result: dict[str, Any]) -> str:
    text = f"{result['run']}: {result['state']}"
    if result.get("map@r") is not None:
        text += f" (test MAP@R {result['map@r']:.3f})"
    if result.get("error"):
        text += f": {result['error']}"
    return text


def run_one(config: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """Train (or resume), embed and evaluate one run of a sweep; returns ``{run, state, ...}``.

    A finished and evaluated run is skipped; a cancellation request stops training at the
    trainer's next check and marks the run ``cancelled`` (resumable). Errors are caught, logged to
    ``progress.jsonl`` and returned as state ``failed`` so the other runs go on.
    """
    from dmlviz.train import train

    out = Path(out)
    name = config["name"]
    path = out / name
    if cancel_requested(out, name):
        mark_cancelled(path)
        append_progress(out, {"event": "run_cancelled", "run": name})
        return {"run": name, "state": "cancelled"}
    run = finished_run(path)
    if run is not None and evaluated(run):
        append_progress(out, {"event": "run_skipped", "run": name})
        return {"run": name, "state": "finished", "map@r": _map_at_r(run), "skipped": True}
    try:
        if run is None:
            resumed = is_run(path)
            append_progress(out, {"event": "run_started", "run": name, "resumed": resumed})

            def on_epoch(record: dict[str, Any]) -> None:
                _record_epoch(out, name, config["epochs"], record)

            run = train(
                config,
                path,
                resume=resumed,
                progress=False,
                on_epoch=on_epoch,
                should_stop=lambda: cancel_requested(out, name),
            )
            if run.status().get("state") != "finished":
                if cancel_requested(out, name):
                    mark_cancelled(path)
                    append_progress(out, {"event": "run_cancelled", "run": name})
                    return {"run": name, "state": "cancelled"}
                state = run.status().get("state", "interrupted")
                append_progress(out, {"event": "run_stopped", "run": name, "state": state})
                return {"run": name, "state": state}
        if not evaluated(run):
            _evaluate(run)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        append_progress(
            out,
            {"event": "run_failed", "run": name, "error": message, "trace": traceback.format_exc()},
        )
        return {"run": name, "state": "failed", "error": message}
    append_progress(out, {"event": "run_finished", "run": name, "map@r": _map_at_r(run)})
    return {"run": name, "state": "finished", "map@r": _map_at_r(run)}


def _record_epoch(out: Path, name: str, epochs: int, record: dict[str, Any]) -> None:
    epoch = int(record.get("epoch", 0))
    seconds = record.get("seconds")
    eta = None if seconds is None else max(0, epochs - epoch) * float(seconds)
    append_progress(
        out,
        {
            "event": "epoch",
            "run": name,
            "epoch": epoch,
            "epochs": epochs,
            "loss": record.get("loss"),
            "images_per_s": record.get("images_per_s"),
            "seconds": seconds,
            "eta_s": eta,
            "map@r": record.get("map@r"),
        },
    )


def _evaluate(run: Run) -> None:
    from dmlviz.evaluate import evaluate_run
    from dmlviz.train import embed_run

    embed_run(run, ("train", "test"))
    evaluate_run(run)


def _project(out: Path, run: Run, methods: Sequence[str], say: Callable[[str], None]) -> None:
    """Compute a run's maps; a failure is reported and leaves the run without maps, the sweep
    goes on (the dashboard computes missing maps on demand)."""
    from dmlviz.project import project_run

    append_progress(out, {"event": "projecting", "run": run.name})
    try:
        project_run(run, splits=("train", "test"), methods=tuple(methods))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        append_progress(out, {"event": "maps_failed", "run": run.name, "error": message})
        say(f"{run.name}: maps failed: {message}")


def _map_at_r(run: Run) -> float | None:
    metrics = run.eval_metrics("test") or {}
    return metrics.get("map@r")


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt so a cancelled sweep records its runs as interrupted
    and releases its lock (used by ``dmlviz sweep``)."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills outright
        raise KeyboardInterrupt

    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, handler)
