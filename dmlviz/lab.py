"""The noise lab's backend: start a sweep as a background process, watch it, cancel it, read it.

An experiment is a sweep folder (see ``dmlviz.sweep``) below the dashboard's runs folder, run by
``python -m dmlviz sweep`` (the same code path as the command line) in its own process group,
plus ``experiment.json`` (the spec, the process ID, the command) and ``sweep.log`` (its output).
The dashboard page only calls the functions here; everything it shows comes from the folder's
files, so a page reload, a second browser tab or a restarted dashboard sees the same state.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dmlviz.runs import Run, RunError, atomic_write_json
from dmlviz.sweep import (
    CANCEL_DIR,
    LOCK_FILE,
    LOCK_TOKEN_ENV,
    RUNS_CSV,
    SPEC_FILE,
    FolderBusyError,
    FolderLock,
    SweepSpec,
    append_progress,
    lock_is_live,
    mark_cancelled,
    pid_alive,
    read_lock,
    read_progress,
    run_name,
    spec_problems,
    summarize,
)

__all__ = [
    "Experiment",
    "FolderBusyError",
    "cancel_experiment",
    "comparison_text",
    "estimate_seconds",
    "experiment_state",
    "list_experiments",
    "resume_experiment",
    "start_experiment",
    "validate_spec",
]

EXPERIMENT_FILE = "experiment.json"
LOG_FILE = "sweep.log"
STARTUP_S = 6.0  # a fresh Python process importing torch, the data and the losses
# numba compiles UMAP once per process: 30-40 s for 5000 points (docs/environment), less below
# 4096 points (exact kNN); the demo's 18 maps of about 900 points took about 22 s of CPU in all.
UMAP_COMPILE_S = 20.0
UMAP_MAP_S = 0.5  # each further UMAP map of a small split
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PROCESSES: dict[str, subprocess.Popen] = {}  # experiments this process started, to reap them


@dataclass
class Experiment:
    """A started experiment: its folder, spec and process (``process`` is None when it was
    started by another process, e.g. before a dashboard restart)."""

    folder: Path
    spec: dict[str, Any]
    pid: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    def state(self) -> dict[str, Any]:
        """``experiment_state`` of this experiment."""
        return experiment_state(self.folder)

    def running(self) -> bool:
        """Whether the sweep process still runs."""
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end; returns its exit code (None if unknown or timed out)."""
        if self.process is not None:
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid_alive(self.pid):
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        return None

    def cancel(self, run: str | None = None) -> None:
        """``cancel_experiment`` for this experiment."""
        cancel_experiment(self.folder, run)


# -- the form -----------------------------------------------------------------------------------------


def _sweep_spec(spec: dict[str, Any]) -> SweepSpec:
    """The ``SweepSpec`` of a lab spec (the form's dict: a SweepSpec's fields plus ``name``)."""
    fields = {key: value for key, value in spec.items() if key != "name"}
    return SweepSpec.from_dict(fields)


def validate_spec(spec: dict[str, Any]) -> list[str]:
    """Every problem with the form's ``spec`` as a message to show next to it; empty when valid.

    ``spec`` keys: dataset, losses, noise_rates, seeds, noise_kind, epochs, and optionally jobs,
    umap, dataset_root, protocol, presets ("tuned" or "paper"), name (the experiment folder's
    name).
    """
    if not isinstance(spec, dict):
        return [f"an experiment spec must be a dict, not {type(spec).__name__}"]
    missing = [key for key in ("dataset", "losses", "noise_rates") if key not in spec]
    if missing:
        return [f"the spec lacks {', '.join(missing)}"]
    unknown = sorted(set(spec) - set(SweepSpec.__dataclass_fields__) - {"name"})
    problems = [f"unknown setting {key!r}" for key in unknown]
    for key in ("losses", "noise_rates", "seeds"):
        if key in spec and not isinstance(spec[key], (list, tuple)):
            problems.append(f"{key} must be a list, not {type(spec[key]).__name__}")
    if problems:
        return problems
    problems += spec_problems(_sweep_spec(spec))
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        problems.append(
            f"experiment name {name!r} may hold only letters, digits, '.', '_' and '-', and must "
            "start with a letter or digit"
        )
    return problems


# -- estimates -----------------------------------------------------------------------------------------


def estimate_seconds(spec: dict[str, Any]) -> float:
    """Expected wall time of the experiment on this machine, in seconds.

    Training time comes from timing real optimiser steps of each loss's model on a batch of the
    dataset's shape here (measured once per process and setting), times the batches per epoch,
    epochs and runs, divided over ``jobs``; plus process start-up, evaluation and (unless
    ``umap`` is false) UMAP's one-off compilation and its maps.
    """
    problems = validate_spec(spec)
    if problems:
        raise ValueError("; ".join(problems))
    sweep = _sweep_spec(spec)
    runs_per_loss = len(sweep.noise_rates) * len(sweep.seeds)
    training = 0.0
    evaluation = 0.0
    for loss in sweep.losses:
        epoch_s, eval_s, default_epochs = _measured_costs(
            sweep.dataset, loss, sweep.dataset_root, sweep.protocol
        )
        epochs = sweep.epochs or default_epochs
        training += runs_per_loss * epochs * epoch_s
        evaluation += runs_per_loss * eval_s
    parallel = min(sweep.jobs, runs_per_loss * len(sweep.losses))
    seconds = STARTUP_S * (1 + (parallel if parallel > 1 else 0))
    seconds += (training + evaluation) / parallel
    if sweep.umap:
        seconds += UMAP_COMPILE_S + 2 * UMAP_MAP_S * runs_per_loss * len(sweep.losses)
    return float(seconds)


@functools.lru_cache(maxsize=64)
def _measured_costs(
    dataset: str, loss: str, root: str | None, protocol: str | None
) -> tuple[float, float, int]:
    """(seconds per training epoch, seconds to embed and evaluate a run, default epochs) of
    ``loss`` on ``dataset``, measured by timing optimiser steps and a forward pass here."""
    import numpy as np
    import torch

    from dmlviz.data import MPerClassBatchSampler, load_dataset
    from dmlviz.losses import build
    from dmlviz.models import build_model
    from dmlviz.train import default_config

    config = default_config(dataset, loss)
    kwargs = {"root": root, "seed": config["split_seed"], "protocol": protocol}
    train_set = load_dataset(dataset, split="train", **kwargs)
    test_set = load_dataset(dataset, split="test", **kwargs)
    size = config["image_size"] or train_set.image_size
    batches = len(
        MPerClassBatchSampler(
            np.asarray(train_set.labels),
            m=config["m_per_class"],
            batch_size=config["batch_size"],
            seed=0,
            batches_per_epoch=config["batches_per_epoch"],
        )
    )
    torch.manual_seed(0)
    model = build_model(
        config["model"],
        embedding_dim=config["embedding_dim"],
        in_channels=train_set.in_channels,
        image_size=size,
        pooling=config["pooling"],
    )
    loss_fn = build(loss, **config["loss_kwargs"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    classes = config["batch_size"] // config["m_per_class"]
    images = torch.randn(config["batch_size"], train_set.in_channels, size, size)
    labels = torch.arange(classes).repeat_interleave(config["m_per_class"])
    step_times = []
    for _ in range(8):
        started = time.perf_counter()
        value = loss_fn(model(images), labels)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - started)
    # the first step pays one-off allocations; the fastest of the rest is the least disturbed by
    # other processes on a shared machine
    step_s = float(min(step_times[1:]))
    model.eval()
    forward_times = []
    with torch.inference_mode():
        for _ in range(3):
            started = time.perf_counter()
            model(images)
            forward_times.append(time.perf_counter() - started)
    forward_s = min(forward_times)
    loading_s = 1.25  # the data loader's per-batch work, relative to the step (measured on digits)
    epoch_s = batches * step_s * loading_s
    embed_s = (len(train_set) + len(test_set)) / config["batch_size"] * forward_s
    eval_s = 1.0 + 2 * embed_s  # faiss kNN, metrics and files: about a second on small sets
    return epoch_s, eval_s, int(config["epochs"])


# -- starting, watching, cancelling -------------------------------------------------------------------


def start_experiment(spec: dict[str, Any], runs_dir: str | Path) -> Experiment:
    """Start ``python -m dmlviz sweep`` for ``spec`` into ``runs_dir/<name>`` in the background.

    ``name`` defaults to ``lab-<dataset>-<date-time>``. The sweep runs in its own process group
    (so cancelling stops its workers too), writes ``sweep.log`` and ``progress.jsonl``, and holds
    the folder's lock. Raises ``FolderBusyError`` when another live process writes the folder,
    ``ValueError`` listing the spec's problems or when the experiment already exists (resume it
    with ``resume_experiment``).
    """
    problems = validate_spec(spec)
    if problems:
        raise ValueError("; ".join(problems))
    runs_dir = Path(runs_dir)
    name = spec.get("name") or f"lab-{spec['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = runs_dir / name
    owner = read_lock(folder)
    if lock_is_live(owner):
        raise FolderBusyError(
            f"{folder} is in use by process {owner['pid']}; wait for it, cancel it, or choose "
            "another experiment name"
        )
    if (folder / EXPERIMENT_FILE).exists():
        raise ValueError(
            f"experiment {name!r} already exists in {runs_dir}; resume it or choose another name"
        )
    if (folder / SPEC_FILE).exists():
        raise ValueError(f"{folder} already holds a sweep; choose another experiment name")
    return _launch(folder, {**spec, "name": name})


def resume_experiment(folder: str | Path) -> Experiment:
    """Start a stopped or cancelled experiment again: finished runs are kept, cancelled and
    interrupted ones resume from their last epoch, queued ones start. ``FolderBusyError`` when
    it is still running."""
    folder = Path(folder)
    record = _read_experiment(folder)
    if record is None:
        raise ValueError(f"{folder} is not a noise-lab experiment (no {EXPERIMENT_FILE})")
    return _launch(folder, record["spec"])


def _launch(folder: Path, spec: dict[str, Any]) -> Experiment:
    """Take the folder's lock, start the sweep process and hand the lock over to it."""
    token = secrets.token_hex(16)
    lock = FolderLock(folder, token=token).acquire()
    try:
        _clear_cancel_requests(folder)
        command = [
            sys.executable,
            "-m",
            "dmlviz",
            "sweep",
            *_sweep_arguments(spec),
            "--out",
            str(folder),
        ]
        record = {
            "spec": spec,
            "command": command,
            "created": (_read_experiment(folder) or {}).get("created", time.time()),
            "started": time.time(),
            "pid": None,
            "cancelled": False,
        }
        atomic_write_json(folder / EXPERIMENT_FILE, record)
        package_parent = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            LOCK_TOKEN_ENV: token,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [package_parent, os.environ.get("PYTHONPATH")])
            ),
            "PYTHONUNBUFFERED": "1",
        }
        with open(folder / LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
    except BaseException:
        lock.release()
        raise
    FolderLock(folder, token=token).acquire(pid=process.pid)
    record["pid"] = process.pid
    atomic_write_json(folder / EXPERIMENT_FILE, record)
    _PROCESSES[str(folder.resolve())] = process
    return Experiment(folder=folder, spec=spec, pid=process.pid, process=process)


def _sweep_arguments(spec: dict[str, Any]) -> list[str]:
    """The ``dmlviz sweep`` options for a lab spec."""
    sweep = _sweep_spec(spec)
    arguments = [
        "--dataset",
        sweep.dataset,
        "--losses",
        ",".join(sweep.losses),
        "--noise",
        ",".join(repr(float(rate)) for rate in sweep.noise_rates),
        "--noise-kind",
        sweep.noise_kind,
        "--seeds",
        ",".join(str(seed) for seed in sweep.seeds),
        "--jobs",
        str(sweep.jobs),
    ]
    if sweep.epochs is not None:
        arguments += ["--epochs", str(sweep.epochs)]
    if not sweep.umap:
        arguments.append("--no-umap")
    if sweep.dataset_root is not None:
        arguments += ["--root", str(sweep.dataset_root)]
    if sweep.protocol is not None:
        arguments += ["--protocol", sweep.protocol]
    return [*arguments, "--preset", sweep.presets]


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
    record = _read_experiment(folder) or {}
    spec = record.get("spec") or _read_json(folder / SPEC_FILE) or {}
    lock = read_lock(folder)
    alive = lock_is_live(lock) or (record.get("pid") is not None and _process_alive(record["pid"]))
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
    for loss, rate, seed in _planned(spec):
        name = run_name(loss, rate, seed)
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
        "log_tail": _log_tail(folder) if failed else "",
    }


def _planned(spec: dict[str, Any]) -> list[tuple[str, float, int]]:
    return [
        (loss, float(rate), int(seed))
        for seed in spec.get("seeds", [0])
        for rate in spec.get("noise_rates", [])
        for loss in spec.get("losses", [])
    ]


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
    if (path / "config.json").exists():
        try:
            run = Run.load(path)
        except RunError:
            run = None
    if run is None:
        if (folder / CANCEL_DIR / name).exists() or cancelled:
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


def cancel_experiment(folder: str | Path, run: str | None = None, timeout: float = 20.0) -> None:
    """Cancel a whole experiment (``run`` None) or one of its runs.

    One run: it stops at the trainer's next check (or is skipped while queued) and is marked
    ``cancelled``; the sweep goes on with the others. The whole experiment: its process group is
    sent SIGTERM (SIGKILL after ``timeout`` seconds), every unfinished run is marked
    ``cancelled`` and the lock is cleared. Finished runs are kept; cancelled runs resume with
    ``resume_experiment``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"experiment folder {folder} does not exist")
    if run is not None and not _NAME.match(run):
        raise ValueError(f"{run!r} is not a run name")
    alive_pid = _live_owner(folder)
    if run is not None:
        cancel_dir = folder / CANCEL_DIR
        cancel_dir.mkdir(parents=True, exist_ok=True)
        (cancel_dir / run).touch()
        if alive_pid is None:
            mark_cancelled(folder / run)
        return
    if alive_pid is None and _last_sweep_event(folder) == "sweep_finished":
        return  # nothing left to cancel
    if alive_pid is not None:
        _stop_group(alive_pid, timeout)
    for path in sorted(p for p in folder.iterdir() if (p / "config.json").exists()):
        mark_cancelled(path)
    record = _read_experiment(folder)
    if record is not None:
        atomic_write_json(folder / EXPERIMENT_FILE, {**record, "cancelled": True, "pid": None})
    lock = read_lock(folder)
    if lock is not None and not lock_is_live(lock):
        (folder / LOCK_FILE).unlink(missing_ok=True)
    append_progress(folder, {"event": "sweep_cancelled"})


def _last_sweep_event(folder: Path) -> str | None:
    """The last sweep-level event of ``progress.jsonl`` (sweep_started, sweep_finished, ...)."""
    events = [r.get("event") for r in read_progress(folder)]
    events = [e for e in events if e and e.startswith("sweep_")]
    return events[-1] if events else None


def _live_owner(folder: Path) -> int | None:
    """The PID of the live process working in ``folder``, or None."""
    lock = read_lock(folder)
    if lock_is_live(lock):
        return int(lock["pid"])
    record = _read_experiment(folder) or {}
    pid = record.get("pid")
    return pid if isinstance(pid, int) and _process_alive(pid) else None


def _stop_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group led by ``pid`` (just ``pid`` when it leads none), then SIGKILL
    what is left after ``timeout`` seconds; returns once they are gone."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    own_group = group == pid

    def send(sig: int) -> None:
        try:
            if own_group:
                os.killpg(group, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def gone() -> bool:
        _reap(pid)
        return not _process_alive(pid) and not (own_group and _group_alive(group))

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not gone():
        if time.monotonic() > deadline:
            send(signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while not gone() and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status of a sweep this process started (so it leaves no zombie)."""
    for key, process in list(_PROCESSES.items()):
        if process.pid == pid and process.poll() is not None:
            del _PROCESSES[key]


def _process_alive(pid: int) -> bool:
    _reap(pid)
    return pid_alive(pid)


def _group_alive(group: int) -> bool:
    """Whether any non-zombie process is left in process group ``group`` (Linux /proc scan)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def _clear_cancel_requests(folder: Path) -> None:
    cancel_dir = folder / CANCEL_DIR
    if cancel_dir.is_dir():
        for marker in cancel_dir.iterdir():
            marker.unlink(missing_ok=True)


def _read_experiment(folder: Path) -> dict[str, Any] | None:
    record = _read_json(folder / EXPERIMENT_FILE)
    return record if isinstance(record, dict) and isinstance(record.get("spec"), dict) else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _log_tail(folder: Path, lines: int = 30) -> str:
    try:
        text = (folder / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def list_experiments(runs_dir: str | Path) -> list[Path]:
    """Every experiment folder directly below ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if (p / EXPERIMENT_FILE).exists()]
    return sorted(found, key=lambda p: (_read_experiment(p) or {}).get("created", 0), reverse=True)


# -- reading the results -----------------------------------------------------------------------------


def comparison_text(runs: str | Path | pd.DataFrame) -> str:
    """A one-paragraph plain-language reading of a sweep's results (``runs.csv`` or its frame).

    Says which loss lost the least MAP@R from the lowest to the highest noise rate and by how
    much, how the others compare, how well neighbour consistency detected the flipped labels at
    the highest rate, and adds a caveat when the seeds disagree by as much as the losses differ
    (or when there is only one seed, or the losses were not tuned alike).
    """
    if not isinstance(runs, pd.DataFrame):
        path = Path(runs)
        runs = pd.read_csv(path / RUNS_CSV if path.is_dir() else path)
    if runs.empty or "map@r" not in runs:
        return "No finished runs yet: nothing to compare."
    summary = summarize(runs)
    if summary.empty:
        return "No finished runs yet: nothing to compare."
    kind = str(runs["noise_kind"].dropna().iloc[0]) if runs["noise_kind"].notna().any() else ""
    low, high = summary["noise_rate"].min(), summary["noise_rate"].max()
    sentences = []
    if low == high:
        ranked = summary.sort_values("map@r_mean", ascending=False)
        parts = [f"{r['loss']} {r['map@r_mean']:.3f}" for r in ranked.to_dict("records")]
        sentences.append(
            f"At {_pct(low)} {kind} noise, test MAP@R is {', '.join(parts)} "
            f"({ranked.iloc[0]['loss']} is best); add a second noise rate to see robustness."
        )
        gaps = ranked["map@r_mean"].diff().abs().dropna()
        spread = summary["map@r_std"].max()
    else:
        drops = []
        for loss, group in summary.groupby("loss", sort=False):
            at = group.set_index("noise_rate")
            if low in at.index and high in at.index:
                start, end = at.loc[low, "map@r_mean"], at.loc[high, "map@r_mean"]
                drops.append((start - end, loss, start, end))
        if not drops:
            return "No loss has finished runs at both the lowest and the highest noise rate yet."
        drops.sort()
        best_drop, best, start, end = drops[0]
        sentences.append(
            f"From {_pct(low)} to {_pct(high)} {kind} label noise, {best} lost the least test "
            f"MAP@R ({start:.3f} → {end:.3f}, {_signed(-best_drop)})"
        )
        if len(drops) > 1:
            others = ", ".join(f"{loss} {_signed(-drop)}" for drop, loss, _, _ in drops[1:])
            sentences[-1] += f", ahead of {others}."
        else:
            sentences[-1] += "."
        gaps = pd.Series([b[0] - a[0] for a, b in zip(drops, drops[1:], strict=False)])
        spread = summary.loc[summary["noise_rate"].isin([low, high]), "map@r_std"].max()
    at_high = summary[summary["noise_rate"] == high].dropna(subset=["detector_auroc_mean"])
    if not at_high.empty:
        parts = [f"{r['loss']} {r['detector_auroc_mean']:.2f}" for r in at_high.to_dict("records")]
        sentences.append(
            f"At {_pct(high)} noise, flagging training images whose neighbours disagree with their "
            f"label found the flipped ones with AUROC {', '.join(parts)} (0.5 is chance)."
        )
    seeds = int(summary["seeds"].min())
    if seeds < 2:
        sentences.append(
            "Each number comes from a single seed, so differences of a few hundredths may be "
            "chance; run more seeds before drawing conclusions."
        )
    elif len(gaps) and not pd.isna(spread) and spread >= gaps.min():
        sentences.append(
            f"Caveat: the seeds disagree (standard deviation up to {spread:.3f}) by as much as "
            f"the losses differ ({gaps.min():.3f}), so this ranking is not reliable; add seeds."
        )
    from dmlviz.sweep import tuning_warning

    warning = tuning_warning(summary)
    if warning:
        sentences.append("Note: " + warning[0].upper() + warning[1:])
    return " ".join(sentences)


def _pct(rate: float) -> str:
    return f"{rate * 100:g} %"


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−") if not math.isnan(value) else "n/a"
