"""Where a noise-lab experiment (or any sweep folder) stands, rebuilt from its files.

Everything comes from the folder (``experiment.json``, ``folder.lock``, ``progress.jsonl``, the run
folders, ``sweep.log``), so a page reload, a second browser tab or a restarted dashboard sees the
same state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dmlviz.experiments.folder import (
    EXPERIMENT_FILE,
    LOG_FILE,
    SPEC_FILE,
    cancel_requested,
    lock_is_live,
    read_lock,
    read_progress,
)
from dmlviz.experiments.spec import combinations, run_name
from dmlviz.jobs import process as processes
from dmlviz.runs import Run, RunError, is_run


def experiment_state(folder: str | Path) -> dict[str, Any]:
    """Where an experiment (or any sweep folder) stands, from its files.

    Returns ``{"folder", "name", "spec", "pid", "alive", "phase", "finished", "cancelled",
    "failed", "error", "done", "queued", "running", "total", "eta_s", "runs", "log_tail"}``.
    ``runs`` is one dict per planned run: run, loss_name, noise_rate, seed, state (queued,
    running, evaluating, finished, cancelled, interrupted, failed), epoch, epochs, loss (the last
    epoch's training loss), images_per_s, eta_s (seconds left in this run), map@r. ``phase`` is
    starting, training, projecting, finished, cancelled, failed or stopped.
    """
    folder = Path(folder)
    record = read_experiment(folder) or {}
    spec = record.get("spec") or _read_json(folder / SPEC_FILE) or {}
    lock = read_lock(folder)
    alive = lock_is_live(lock) or (record.get("pid") is not None and processes.alive(record["pid"]))
    progress = read_progress(folder)
    epochs_seen: dict[str, dict[str, Any]] = {}
    events: dict[str, dict[str, Any]] = {}
    sweep_events = []
    for item in progress:
        event = item.get("event")
        if event == "epoch":
            epochs_seen[item["run"]] = item
        elif event and event.startswith("run_"):
            events[item["run"]] = item
        elif event:
            sweep_events.append(item)
    last = sweep_events[-1]["event"] if sweep_events else None
    cancelled = bool(record.get("cancelled"))
    runs = []
    planned = combinations(spec.get("losses", []), spec.get("noise_rates", []),
                           spec.get("seeds", [0]), spec.get("train_fractions", [1.0]))  # fmt: skip
    for loss, rate, seed, fraction in planned:
        name = run_name(loss, rate, seed, train_fraction=fraction)
        runs.append(
            _run_state(folder, name, loss, rate, seed, alive, cancelled, epochs_seen, events)
        )
    states = [r["state"] for r in runs]
    error = sweep_events[-1].get("error") if last == "sweep_failed" else None
    unfinished = last in ("sweep_started", "projecting", "maps_failed")  # died without a word
    failed = last == "sweep_failed" or (not alive and not cancelled and unfinished)
    if alive:
        mapping = last in ("projecting", "maps_failed")
        phase = "projecting" if mapping else "training" if progress else "starting"
    elif cancelled:
        phase = "cancelled"
    elif last == "sweep_finished":
        phase = "finished"
    elif failed:
        phase = "failed"
    else:
        phase = "stopped"
    return {
        "folder": str(folder),
        "name": spec.get("name") or folder.name,
        "spec": spec,
        "pid": (lock or {}).get("pid") or record.get("pid"),
        "alive": alive,
        "phase": phase,
        "finished": last == "sweep_finished" and not alive,
        "cancelled": cancelled,
        "failed": failed,
        "error": error,
        "done": states.count("finished"),
        "queued": states.count("queued"),
        "running": sum(s in ("running", "evaluating") for s in states),
        "total": len(runs),
        "eta_s": _overall_eta(runs, epochs_seen, spec.get("jobs", 1)) if alive else None,
        "runs": runs,
        "log_tail": log_tail(folder) if failed else "",
    }


def _run_state(
    folder: Path,
    name: str,
    loss: str,
    rate: float,
    seed: int,
    alive: bool,
    cancelled: bool,
    epochs_seen: dict[str, dict[str, Any]],
    events: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    path = folder / name
    last_epoch = epochs_seen.get(name, {})
    entry: dict[str, Any] = {
        "run": name,
        "loss_name": loss,
        "noise_rate": rate,
        "seed": seed,
        "state": "queued",
        "epoch": last_epoch.get("epoch", 0),
        "epochs": last_epoch.get("epochs"),
        "loss": last_epoch.get("loss"),
        "images_per_s": last_epoch.get("images_per_s"),
        "eta_s": None,
        "map@r": None,
    }
    run = None
    if is_run(path):
        try:
            run = Run.load(path)
        except RunError:
            run = None
    if run is None:
        if cancel_requested(folder, name) or cancelled:
            entry["state"] = "cancelled"
        elif events.get(name, {}).get("event") == "run_failed":
            entry["state"] = "failed"
        return entry
    status = run.status()
    state = status.get("state", "created")
    entry["epochs"] = entry["epochs"] or status.get("epochs") or run.config.get("epochs")
    entry["epoch"] = status.get("epoch", entry["epoch"])
    metrics = run.eval_metrics("test")
    if metrics is not None:
        entry["map@r"] = metrics.get("map@r")
    if events.get(name, {}).get("event") == "run_failed":
        state = "failed"
    elif state == "finished":
        state = "finished" if metrics is not None else ("evaluating" if alive else "interrupted")
    elif state in ("running", "created"):
        state = "running" if alive else ("cancelled" if cancelled else "interrupted")
    entry["state"] = state
    if state == "running" and last_epoch.get("seconds") is not None and entry["epochs"]:
        entry["eta_s"] = max(0, entry["epochs"] - entry["epoch"]) * float(last_epoch["seconds"])
    return entry


def _overall_eta(
    runs: list[dict[str, Any]], epochs_seen: dict[str, dict[str, Any]], jobs: int
) -> float | None:
    """Seconds until every run has trained, from the measured seconds per epoch so far."""
    seconds = [r["seconds"] for r in epochs_seen.values() if r.get("seconds") is not None]
    if not seconds:
        return None
    per_epoch = sum(seconds) / len(seconds)
    left = 0.0
    for run in runs:
        if run["state"] in ("running", "queued"):
            epochs = run["epochs"] or max((r.get("epochs") or 0) for r in epochs_seen.values())
            left += max(0, epochs - (run["epoch"] or 0)) * per_epoch
    return left / max(1, int(jobs or 1))


def read_experiment(folder: Path) -> dict[str, Any] | None:
    """The folder's ``experiment.json`` (spec, pid, command, ...), or None when it holds none."""
    record = _read_json(folder / EXPERIMENT_FILE)
    return record if isinstance(record, dict) and isinstance(record.get("spec"), dict) else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def log_tail(folder: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of the sweep's output (``sweep.log``), empty when there is none."""
    try:
        text = (folder / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
