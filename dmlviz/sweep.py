"""Sweeps: every (loss, noise rate, seed) combination on the same splits and the same noisy labels.

A sweep folder holds one run per combination, named ``<loss>-noise<rate%>-seed<s>``, and::

    sweep.json       the spec (dataset, losses, rates, seeds, ...)
    progress.jsonl   one JSON record per epoch and per run event (the noise lab reads it)
    folder.lock      the PID of the process writing the folder (absent when none is)
    runs.csv         one row per run: settings, state, MAP@R, R@1, neighbour consistency, detector
    summary.csv      mean and standard deviation over seeds per loss x noise rate
    summary.md       the same summary as a Markdown table

For a given (rate, seed) every loss trains on identical noisy labels: the noise seed is the run's
seed and the split seed is fixed. Each loss takes its hyperparameters from the per-dataset preset
table (``dmlviz.presets``). A sweep is resumable: finished runs are skipped, interrupted or
cancelled ones resume from their last saved epoch. Projections are computed at the end in this one
process, so UMAP's numba compilation (30-40 s per process) is paid once.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dmlviz.runs import Run, RunError, atomic_write_json, atomic_write_text

SPEC_FILE = "sweep.json"
PROGRESS_FILE = "progress.jsonl"
LOCK_FILE = "folder.lock"
CANCEL_DIR = ".cancel"  # one empty file per run whose cancellation was requested
RUNS_CSV = "runs.csv"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
LOCK_TOKEN_ENV = "DMLVIZ_SWEEP_LOCK_TOKEN"  # lets a launcher hand its lock to the sweep it starts

RUN_COLUMNS = (
    "name",
    "loss",
    "noise_kind",
    "noise_rate",
    "seed",
    "epochs",
    "state",
    "map@r",
    "recall@1",
    "consistency_clean",
    "consistency_flipped",
    "detector_auroc",
    "preset_source",
    "path",
)
SUMMARY_METRICS = (
    "map@r",
    "recall@1",
    "consistency_clean",
    "consistency_flipped",
    "detector_auroc",
)
# Settings that must stay the same when a sweep folder is reused.
FIXED_SETTINGS = (
    "dataset",
    "protocol",
    "noise_kind",
    "split_seed",
    "dataset_root",
    "epochs",
    "presets",
)
# The demo: a small digits sweep that finishes in under 3 minutes on a 2-core CPU
# (benchmarks/demo_time.py measures it); --quick is a smoke run of one loss, one rate, one epoch.
DEMO_LOSSES = ["contextual", "rll", "multisimilarity"]
DEMO_NOISE_RATES = [0.0, 0.2, 0.4]
DEMO_PROTOCOL = "samples"


@dataclass
class SweepSpec:
    """What a sweep trains: every combination of ``losses`` x ``noise_rates`` x ``seeds``.

    ``epochs`` None keeps each dataset's default; ``jobs`` is the number of runs trained in
    parallel processes; ``umap`` adds UMAP maps to the PCA ones; ``protocol`` None is the
    dataset's default class split (see ``dmlviz.data.load_dataset``); ``presets`` "tuned" trains
    each loss with its preset tuned on validation where one ships (else its paper defaults),
    "paper" with its paper defaults (``dmlviz.presets``).
    """

    dataset: str
    losses: list[str]
    noise_rates: list[float]
    seeds: list[int] = field(default_factory=lambda: [0])
    noise_kind: str = "symmetric"
    epochs: int | None = None
    jobs: int = 1
    umap: bool = True
    dataset_root: str | None = None
    protocol: str | None = None
    split_seed: int = 0
    presets: str = "tuned"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """Build a spec from a plain dict (such as ``sweep.json``), ignoring unknown keys."""
        known = {name for name in cls.__dataclass_fields__}
        spec = cls(**{key: value for key, value in data.items() if key in known})
        spec.losses = list(spec.losses)
        spec.noise_rates = list(spec.noise_rates)
        spec.seeds = list(spec.seeds)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict."""
        return asdict(self)

    def run_names(self) -> list[str]:
        """Every run's name, in training order (seed, then rate, then loss)."""
        return [
            run_name(loss, rate, seed)
            for seed in self.seeds
            for rate in self.noise_rates
            for loss in self.losses
        ]


def demo_spec(quick: bool = False) -> SweepSpec:
    """The demo's sweep: digits, contextual / RLL / multi-similarity at 0, 20 and 40 % symmetric
    noise, one seed; ``quick``: contextual at 20 % for one epoch, PCA maps only.

    It uses digits' ``samples`` protocol (all ten digits in train and test, half the images
    each), stated explicitly: under the class-disjoint ``classes`` protocol only five classes
    train, the MLP overfits them within a few epochs and label noise acts as a regulariser
    (test MAP@R rises with noise), which hides the effect the demo is about.
    """
    if quick:
        return SweepSpec(
            "digits", ["contextual"], [0.2], [0], epochs=1, umap=False, protocol=DEMO_PROTOCOL
        )
    return SweepSpec(
        "digits",
        list(DEMO_LOSSES),
        list(DEMO_NOISE_RATES),
        [0],
        protocol=DEMO_PROTOCOL,  # epochs: the dataset's, which its presets were tuned for
    )


def run_name(loss: str, noise_rate: float, seed: int) -> str:
    """A run's folder name, e.g. ``rll-noise20-seed0`` for 20 % noise."""
    return f"{loss}-noise{noise_rate * 100:g}-seed{seed}"


def spec_problems(spec: SweepSpec) -> list[str]:
    """Every problem with ``spec`` as a readable message (empty when it is valid)."""
    from dmlviz.data import DATASETS, NOISE_KINDS, PROTOCOLS
    from dmlviz.losses import LOSSES

    problems = []
    if spec.dataset not in DATASETS:
        problems.append(f"dataset {spec.dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
    if not spec.losses:
        problems.append("the list of losses is empty; name at least one")
    unknown = [loss for loss in spec.losses if loss not in LOSSES]
    if unknown:
        problems.append(
            f"unknown loss {', '.join(map(repr, unknown))}; choose from {', '.join(LOSSES)}"
        )
    if len(set(spec.losses)) != len(spec.losses):
        problems.append(f"losses {spec.losses} name a loss twice")
    if not spec.noise_rates:
        problems.append("the list of noise rates is empty; give at least one, e.g. 0")
    for rate in spec.noise_rates:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            problems.append(f"noise rate {rate!r} is outside [0, 1) (0.2 means 20 % of labels)")
    if len(set(spec.noise_rates)) != len(spec.noise_rates):
        problems.append(f"noise rates {spec.noise_rates} repeat a rate")
    if not spec.seeds:
        problems.append("the list of seeds is empty; give at least one, e.g. 0")
    for seed in spec.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            problems.append(f"seed {seed!r} must be an integer >= 0")
    if len(set(spec.seeds)) != len(spec.seeds):
        problems.append(f"seeds {spec.seeds} repeat a seed")
    if spec.noise_kind not in NOISE_KINDS:
        problems.append(
            f"noise kind {spec.noise_kind!r} is unknown; choose one of {', '.join(NOISE_KINDS)}"
        )
    if spec.epochs is not None and (not isinstance(spec.epochs, int) or spec.epochs < 1):
        problems.append(f"epochs {spec.epochs!r} must be an integer >= 1")
    if isinstance(spec.jobs, bool) or not isinstance(spec.jobs, int) or spec.jobs < 1:
        problems.append(f"jobs {spec.jobs!r} must be an integer >= 1")
    allowed = PROTOCOLS.get(spec.dataset, ())
    if spec.protocol is not None and allowed and spec.protocol not in allowed:
        problems.append(
            f"protocol {spec.protocol!r} is unknown for {spec.dataset}; choose one of "
            f"{', '.join(allowed)}"
        )
    from dmlviz.presets import KINDS

    if spec.presets not in KINDS:
        problems.append(f"presets {spec.presets!r} is unknown; choose one of {', '.join(KINDS)}")
    if spec.dataset_root is not None and not Path(spec.dataset_root).exists():
        problems.append(f"dataset root {spec.dataset_root} does not exist")
    return problems


def validate_spec(spec: SweepSpec) -> SweepSpec:
    """Return ``spec`` when valid, else raise ``ValueError`` listing every problem."""
    problems = spec_problems(spec)
    if problems:
        raise ValueError("; ".join(problems))
    return spec


def plan(spec: SweepSpec) -> list[dict[str, Any]]:
    """The training config of every run of ``spec``, in training order."""
    from dmlviz.train import default_config

    configs = []
    for seed in spec.seeds:
        for rate in spec.noise_rates:
            for loss in spec.losses:
                config = default_config(spec.dataset, loss, presets=spec.presets)
                config.update(
                    name=run_name(loss, rate, seed),
                    noise_rate=float(rate),
                    noise_kind=spec.noise_kind,
                    noise_seed=seed,
                    seed=seed,
                    split_seed=spec.split_seed,
                )
                if spec.jobs > 1:  # share the cores among the parallel runs
                    share = max(1, (os.cpu_count() or 1) // spec.jobs)
                    config["num_threads"] = min(config["num_threads"] or share, share)
                if spec.epochs is not None:
                    config["epochs"] = spec.epochs
                if spec.dataset_root is not None:
                    config["dataset_root"] = str(spec.dataset_root)
                if spec.protocol is not None:
                    config["protocol"] = spec.protocol
                configs.append(config)
    return configs


# -- the folder lock ------------------------------------------------------------------------------


class FolderBusyError(ValueError):
    """Another live process holds a sweep folder's lock."""


def read_lock(folder: str | Path) -> dict[str, Any] | None:
    """The lock record of ``folder`` (pid, start time, token, created), or None when unlocked."""
    path = Path(folder) / LOCK_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"pid": None, "corrupt": True}
    return record if isinstance(record, dict) else {"pid": None, "corrupt": True}


def lock_is_live(record: dict[str, Any] | None) -> bool:
    """Whether the process named by a lock record still runs (the same process, not a reused PID)."""
    if not record or not isinstance(record.get("pid"), int):
        return False
    if not pid_alive(record["pid"]):
        return False
    started = record.get("pid_start")
    return started is None or process_start_time(record["pid"]) in (None, started)


class FolderLock:
    """An exclusive lock on a sweep folder: ``folder.lock`` holds the owner's PID.

    A lock left by a dead process is stale and is cleared on ``acquire``. ``token`` lets a
    launcher take the lock first and hand it to the process it starts (which passes the same
    token and takes the lock over under its own PID).
    """

    def __init__(self, folder: str | Path, token: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.token = token

    def acquire(self, pid: int | None = None) -> FolderLock:
        """Take the lock for ``pid`` (default: this process); raises ``FolderBusyError``."""
        pid = os.getpid() if pid is None else pid
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": pid,
            "pid_start": process_start_time(pid),
            "token": self.token,
            "created": time.time(),
        }
        for _ in range(3):
            owner = read_lock(self.folder)
            if owner is not None and self.token and owner.get("token") == self.token:
                atomic_write_json(self.path, record)  # handed over by our launcher
                return self
            if owner is not None and lock_is_live(owner):
                raise FolderBusyError(
                    f"{self.folder} is in use by process {owner['pid']} (see {self.path}); "
                    "wait for it to finish, cancel it, or choose another folder"
                )
            if owner is not None:
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
            if _create_exclusive(self.path, json.dumps(record)):
                return self
        raise FolderBusyError(f"could not take {self.path}: another process keeps taking it")

    def release(self) -> None:
        """Remove the lock if this process (or this token) still owns it."""
        owner = read_lock(self.folder)
        if owner is None:
            return
        if owner.get("pid") == os.getpid() or (self.token and owner.get("token") == self.token):
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _create_exclusive(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` only if it does not exist (atomic: readers never see it
    half-written); returns whether this call created it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a process whose main thread has
    exited while other threads still wind down counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if _task_state(proc / "stat") not in ("Z", "X"):
        return True
    try:
        tasks = list((proc / "task").iterdir())
    except OSError:
        return False
    return any(_task_state(task / "stat") not in ("Z", "X") for task in tasks)


def _task_state(stat: Path) -> str:
    """The one-letter state in a /proc stat file ("?" when unreadable, e.g. not on Linux)."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def process_start_time(pid: int) -> int | None:
    """Process ``pid``'s start time in clock ticks since boot (Linux), to tell a reused PID from
    the original; None where /proc is unavailable."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


# -- progress records -------------------------------------------------------------------------------


def append_progress(folder: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``progress.jsonl`` (a single ``write`` on an O_APPEND file, so
    lines from parallel workers never interleave)."""
    line = json.dumps({"time": time.time(), **record}, default=_plain) + "\n"
    fd = os.open(Path(folder) / PROGRESS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_progress(folder: str | Path) -> list[dict[str, Any]]:
    """Every record of ``progress.jsonl`` (a torn last line is skipped); empty when absent."""
    path = Path(folder) / PROGRESS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def cancel_requested(folder: str | Path, name: str) -> bool:
    """Whether cancelling run ``name`` was requested (``dmlviz.lab.cancel_experiment``)."""
    return (Path(folder) / CANCEL_DIR / name).exists()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# -- running ------------------------------------------------------------------------------------------


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    log: Callable[[str], None] | None = print,
    lock_token: str | None = None,
) -> pd.DataFrame:
    """Train, evaluate and map every run of ``spec`` into ``out``; returns the runs table.

    Writes ``sweep.json``, ``progress.jsonl``, the run folders, ``runs.csv``, ``summary.csv`` and
    ``summary.md``. Holds ``folder.lock`` while it works (``FolderBusyError`` when another live
    process holds it). Runs that fail are reported in the table with state ``failed``.
    """
    validate_spec(spec)
    out = Path(out)
    say = log or (lambda message: None)
    lock = FolderLock(out, token=lock_token or os.environ.get(LOCK_TOKEN_ENV)).acquire()
    try:
        _check_folder(spec, out)  # before any record: the folder may belong to another sweep
    except BaseException:
        lock.release()
        raise
    try:
        atomic_write_json(out / SPEC_FILE, spec.to_dict())
        configs = plan(spec)
        append_progress(
            out, {"event": "sweep_started", "pid": os.getpid(), "runs": spec.run_names()}
        )
        _train_all(configs, out, spec.jobs, say)
        append_progress(out, {"event": "projecting"})
        methods = ("pca", "umap") if spec.umap else ("pca",)
        for config in configs:
            run = _finished_run(out / config["name"])
            if run is not None and _evaluated(run) and not cancel_requested(out, run.name):
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


def _check_folder(spec: SweepSpec, out: Path) -> None:
    """Refuse to mix two different experiments in one folder."""
    path = out / SPEC_FILE
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    new = spec.to_dict()
    for key in FIXED_SETTINGS:
        if key not in old and key == "presets":
            continue  # written before the choice existed
        if old.get(key) != new.get(key):
            raise ValueError(
                f"{out} holds a sweep with {key}={old.get(key)!r}, not {new.get(key)!r}; "
                "choose another --out"
            )


def _train_all(
    configs: list[dict[str, Any]], out: Path, jobs: int, say: Callable[[str], None]
) -> None:
    """Train and evaluate every config, in this process or in ``jobs`` worker processes."""
    if jobs == 1 or len(configs) == 1:
        for config in configs:
            say(_describe(run_one(config, out)))
        return
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(run_one, config, out) for config in configs]
        for future in concurrent.futures.as_completed(futures):
            say(_describe(future.result()))


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
    run = _finished_run(path)
    if run is not None and _evaluated(run):
        append_progress(out, {"event": "run_skipped", "run": name})
        return {"run": name, "state": "finished", "map@r": _map_at_r(run), "skipped": True}
    try:
        if run is None:
            resumed = (path / "config.json").exists()
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
        if not _evaluated(run):
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


def _finished_run(path: Path) -> Run | None:
    """The run at ``path`` if its training finished, else None."""
    if not (path / "config.json").exists():
        return None
    try:
        run = Run.load(path)
    except RunError:
        return None
    return run if run.status().get("state") == "finished" else None


def _evaluated(run: Run) -> bool:
    return run.eval_metrics("test") is not None and run.consistency() is not None


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


def mark_cancelled(path: str | Path) -> None:
    """Mark the unfinished run at ``path`` ``cancelled``, keeping its epoch count (a no-op for a
    run that never started or that finished)."""
    path = Path(path)
    if not (path / "config.json").exists():
        return
    try:
        run = Run.load(path)
    except RunError:
        return
    status = run.status()
    if status.get("state") != "finished":
        run.set_status("cancelled", **{k: v for k, v in status.items() if k in ("epoch", "epochs")})


# -- tables -------------------------------------------------------------------------------------------


def runs_table(out: str | Path, spec: SweepSpec) -> pd.DataFrame:
    """One row per planned run of ``spec`` in ``out`` (``RUN_COLUMNS``); metrics are empty (NaN)
    where undefined, e.g. the detector at 0 % noise or a run that has not finished."""
    out = Path(out)
    rows = []
    for seed in spec.seeds:
        for rate in spec.noise_rates:
            for loss in spec.losses:
                name = run_name(loss, rate, seed)
                row: dict[str, Any] = {
                    "name": name,
                    "loss": loss,
                    "noise_kind": spec.noise_kind,
                    "noise_rate": float(rate),
                    "seed": seed,
                    "state": "cancelled" if cancel_requested(out, name) else "queued",
                }
                if (out / name / "config.json").exists():
                    try:
                        row.update(Run.load(out / name).summary())
                    except RunError as error:
                        row["state"] = f"broken: {error}"
                    row["name"] = name
                rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    for column in SUMMARY_METRICS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric per loss x noise rate.

    Only finished runs with a test MAP@R count; ``seeds`` is how many did. Columns: loss,
    noise_rate, seeds, ``<metric>_mean`` and ``<metric>_std`` for ``SUMMARY_METRICS`` (std empty
    with one seed), preset_source. Losses keep their order of first appearance.
    """
    done = runs[(runs["state"] == "finished") & runs["map@r"].notna()]
    columns = ["loss", "noise_rate", "seeds"]
    columns += [f"{m}_{stat}" for m in SUMMARY_METRICS for stat in ("mean", "std")]
    columns.append("preset_source")
    rows = []
    for loss in dict.fromkeys(runs["loss"]):
        for rate in sorted(set(runs.loc[runs["loss"] == loss, "noise_rate"])):
            group = done[(done["loss"] == loss) & (done["noise_rate"] == rate)]
            if group.empty:
                continue
            row: dict[str, Any] = {"loss": loss, "noise_rate": rate, "seeds": len(group)}
            for metric in SUMMARY_METRICS:
                values = pd.to_numeric(group[metric], errors="coerce").dropna()
                row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
                row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
            sources = sorted({str(s) for s in group["preset_source"].dropna()})
            row["preset_source"] = " / ".join(sources)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def summary_markdown(summary: pd.DataFrame, title: str | None = None) -> str:
    """The summary as a Markdown table (mean ± std over seeds), with a warning when some losses
    use tuned presets and others do not."""
    lines = [f"# {title}", ""] if title else []
    if summary.empty:
        return "\n".join([*lines, "No finished runs yet.", ""])
    lines += [
        "| loss | noise | seeds | MAP@R | R@1 | consistency (clean) | consistency (flipped) "
        "| detector AUROC | hyperparameters |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in summary.to_dict("records"):
        cells = [
            str(row["loss"]),
            f"{row['noise_rate'] * 100:g} %",
            str(row["seeds"]),
            *(_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in SUMMARY_METRICS),
            str(row["preset_source"] or ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± standard deviation over seeds (test split for MAP@R and R@1; neighbour consistency "
        "and the noisy-label detector on the train split). An empty cell is undefined, e.g. the "
        "detector without flipped labels.",
    ]
    warning = tuning_warning(summary)
    if warning:
        lines += ["", f"**Warning:** {warning}"]
    return "\n".join(lines) + "\n"


def tuning_warning(table: pd.DataFrame) -> str | None:
    """A sentence when the compared losses were not tuned alike (some tuned, some not), else None."""
    sources = {
        loss: " / ".join(sorted({str(s) for s in group["preset_source"].dropna()})) or "unknown"
        for loss, group in table.groupby("loss", sort=False)
    }
    tuned = [loss for loss, source in sources.items() if "tuned" in source]
    untuned = [loss for loss, source in sources.items() if "tuned" not in source]
    if not tuned or not untuned:
        return None
    return (
        f"an unequal comparison: {', '.join(tuned)} use hyperparameters tuned on validation, "
        f"{', '.join(f'{loss} ({sources[loss]})' for loss in untuned)} do not; part of a "
        "difference may come from tuning effort, not from the loss."
    )


def _mean_std(mean: float, std: float) -> str:
    if mean is None or pd.isna(mean):
        return ""
    if std is None or pd.isna(std):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {std:.3f}"


def write_reports(out: str | Path, spec: SweepSpec) -> pd.DataFrame:
    """Write ``runs.csv``, ``summary.csv`` and ``summary.md`` for ``spec`` in ``out``; returns the
    runs table."""
    out = Path(out)
    frame = runs_table(out, spec)
    atomic_write_text(out / RUNS_CSV, frame.to_csv(index=False))
    summary = summarize(frame)
    atomic_write_text(out / SUMMARY_CSV, summary.to_csv(index=False))
    protocol = f" ({spec.protocol} protocol)" if spec.protocol else ""
    title = (
        f"Sweep: {spec.dataset}{protocol}, {spec.noise_kind} noise, "
        f"{len(spec.seeds)} seed{'s' if len(spec.seeds) > 1 else ''}"
    )
    atomic_write_text(out / SUMMARY_MD, summary_markdown(summary, title))
    return frame


def is_complete(out: str | Path, spec: SweepSpec) -> bool:
    """Whether every run of ``spec`` in ``out`` finished and the reports are written."""
    out = Path(out)
    if not (out / RUNS_CSV).exists():
        return False
    for name in spec.run_names():
        run = _finished_run(out / name)
        if run is None or not _evaluated(run):
            return False
    return True


def outdated(out: str | Path, spec: SweepSpec) -> list[str]:
    """Why the runs in ``out`` are not the ones ``spec`` would train now (empty when they are, or
    when ``out`` holds none): a fixed setting of its ``sweep.json`` differs, or a run's loss
    settings, learning rate, preset source or epochs differ from today's presets."""
    out = Path(out)
    reasons = []
    try:
        stored = json.loads((out / SPEC_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        stored = {}
    new = spec.to_dict()
    for key in FIXED_SETTINGS:
        if key in stored and stored[key] != new[key]:
            reasons.append(f"{key} is {stored[key]!r}, not {new[key]!r}")
    for config in plan(spec):
        path = out / config["name"] / "config.json"
        try:
            trained = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        changed = [
            key
            for key in ("loss_kwargs", "lr", "preset_source", "epochs")
            if trained.get(key) != config[key]
        ]
        if changed:
            reasons.append(f"{config['name']} was trained with other {', '.join(changed)}")
    return reasons


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt so a cancelled sweep records its runs as interrupted
    and releases its lock (used by ``dmlviz sweep``)."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills outright
        raise KeyboardInterrupt

    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, handler)
