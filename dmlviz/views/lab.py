"""The Noise lab page: the experiment form, the live progress table, the comparison figures and text.

The page starts, watches and cancels experiments through ``dmlviz.experiments.launcher``; the
functions here turn the form's raw inputs into a lab spec with readable problems,
``experiment_state``'s dict into the tables, lines and figures the page shows, and a finished
sweep's ``runs.csv`` into a plain-language comparison (``comparison_text``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dmlviz.experiments.differences import difference_sentence, loss_differences
from dmlviz.experiments.folder import RUNS_CSV
from dmlviz.experiments.reports import most_data, summarize, tuning_warning
from dmlviz.experiments.spec import DEMO_LOSSES
from dmlviz.registry.datasets import NEEDS_NO_ROOT
from dmlviz.registry.metrics import METRICS
from dmlviz.validate import problem
from dmlviz.views.runs import metric_vs_noise
from dmlviz.views.style import MISSING, loss_name

DEFAULT_LOSSES = tuple(DEMO_LOSSES)  # the two studied losses and a baseline, as the demo
DEFAULT_RATES = "0, 0.2, 0.4"
DEFAULT_SEEDS = "0"
# How the form names the choices of dmlviz.experiments.spec.EXECUTORS and dmlviz.presets.KINDS.
EXECUTOR_LABELS = {"local": "this machine", "ray": "a Ray cluster"}
PRESET_LABELS = {"tuned": "tuned presets", "paper": "paper defaults"}
_SEPARATORS = re.compile(r"[,;\s]+")

# How each phase of ``experiment_state`` reads on the page: (label, badge colour).
PHASES: dict[str, tuple[str, str]] = {
    "starting": ("starting", "blue"),
    "training": ("training", "blue"),
    "projecting": ("making maps", "blue"),
    "finished": ("finished", "green"),
    "cancelled": ("cancelled", "orange"),
    "stopped": ("stopped", "orange"),
    "failed": ("failed", "red"),
}
RUN_STATES: dict[str, str] = {"running": "training"}  # the others read as they are


# -- the form -------------------------------------------------------------------------------------


def parse_rates(text: str, name: str = "noise_rate") -> tuple[list[float], list[str]]:
    """``(rates, problems)`` of a noise-rate field such as ``"0, 0.2, 0.4"`` or ``"0 20% 40%"``
    (commas, semicolons or spaces between values; a value with ``%`` is a percentage); the
    problems name the value ``name`` (the train-fraction field reads the same way)."""
    rates: list[float] = []
    problems: list[str] = []
    for token in _tokens(text):
        percent = token.endswith("%")
        try:
            value = float(token.rstrip("%").strip())
        except ValueError:
            problems.append(problem(name, token, "write a number, e.g. 0.2 or 20%"))
            continue
        rates.append(value / 100 if percent else value)
    return rates, problems


def parse_seeds(text: str) -> tuple[list[int], list[str]]:
    """``(seeds, problems)`` of a seeds field such as ``"0, 1, 2"``."""
    seeds: list[int] = []
    problems: list[str] = []
    for token in _tokens(text):
        try:
            seeds.append(int(token))
        except ValueError:
            problems.append(problem("seed", token, "write a whole number"))
    return seeds, problems


def _tokens(text: str) -> list[str]:
    # "20 %" is one value: glue a lone "%" to the number before it
    text = re.sub(r"\s+%", "%", str(text or ""))
    return [token for token in _SEPARATORS.split(text.strip()) if token]


def form_spec(
    dataset: str,
    losses: list[str],
    rates_text: str,
    seeds_text: str,
    noise_kind: str = "symmetric",
    epochs: int | None = None,
    umap: bool = True,
    jobs: int = 1,
    root: str = "",
    name: str = "",
    runs_dir: str | Path | None = None,
    presets: str = "tuned",
    executor: str = "local",
    address: str = "",
    fractions_text: str = "1",
) -> tuple[dict[str, Any], list[str]]:
    """``(spec, problems)``: the noise-lab spec of the form's inputs, and every problem with
    them as a message naming the field and the bad value (empty when the spec can start). With
    ``runs_dir``, a chosen experiment name is also checked against the folders there.
    ``executor`` "ray" trains each run as a Ray task on the cluster at ``address`` (empty: a
    local Ray on this machine); local, the default, is left out of the spec, and so are the
    train fractions (``fractions_text``, read like the rates) when they are all of the data."""
    from dmlviz.experiments.spec import experiment_problems

    rates, problems = parse_rates(rates_text)
    seeds, seed_problems = parse_seeds(seeds_text)
    fractions, fraction_problems = parse_rates(fractions_text, "train_fraction")
    problems += seed_problems + fraction_problems
    spec: dict[str, Any] = {
        "dataset": dataset,
        "losses": list(losses),
        "noise_rates": rates,
        "seeds": seeds,
        "noise_kind": noise_kind,
        "epochs": None if epochs is None else int(epochs),
        "umap": bool(umap),
        "jobs": int(jobs),
        "presets": presets,
    }
    if fractions != [1.0]:
        spec["train_fractions"] = fractions
    root = (root or "").strip()
    if root:
        spec["dataset_root"] = str(Path(root).expanduser())
    elif dataset not in NEEDS_NO_ROOT:
        problems.append(
            problem(
                "dataset_root",
                None,
                f"{dataset} is read from files on this machine: enter its folder",
            )
        )
    if executor != "local":
        spec["executor"] = executor
        if (address or "").strip():
            spec["address"] = address.strip()
    if (name or "").strip():
        spec["name"] = name.strip()
    problems += experiment_problems(spec)
    if runs_dir is not None and spec.get("name") and not problems:
        problems += folder_problems(runs_dir, spec["name"])
    return spec, problems


def folder_problems(runs_dir: str | Path, name: str) -> list[str]:
    """Why an experiment named ``name`` cannot start in ``runs_dir`` (empty when it can): the
    folder is being written by a live process, or already holds an experiment or anything else
    (a sweep, a run, a study, other files)."""
    from dmlviz.experiments.folder import (
        EXPERIMENT_FILE,
        contents,
        folder_kind,
        lock_is_live,
        read_lock,
    )

    folder = Path(runs_dir) / name
    owner = read_lock(folder)
    if lock_is_live(owner):
        return [
            f"{folder} is in use by process {owner['pid']}: wait for it, cancel it, or choose "
            "another experiment name"
        ]
    if (folder / EXPERIMENT_FILE).exists():
        return [f"experiment {name!r} already exists: choose it below to resume it, or rename"]
    if folder_kind(folder) not in ("absent", "empty"):
        return [f"{folder} already holds {contents(folder)}; choose another experiment name"]
    return []


def problems_markdown(problems: list[str]) -> str:
    """The form's problems as a Markdown list of sentences."""
    return "\n".join(f"- {_sentence(problem)}" for problem in problems)


def _sentence(text: str) -> str:
    text = " ".join(text.split()).replace("<", "&lt;")  # one line; "<root>" is not an HTML tag
    if "=" not in text.split(" ", 1)[0]:  # "noise_rate=1.5 is invalid: ..." keeps the key's case
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def format_duration(seconds: float | None) -> str:
    """A duration for people: ``"45 s"``, ``"12 min"``, ``"1 h 05 min"`` (``"-"`` when unknown)."""
    if seconds is None or seconds != seconds:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def estimate_text(seconds: float, spec: dict[str, Any]) -> str:
    """The estimate shown before Start: the time and what it covers."""
    losses, rates, seeds = len(spec["losses"]), len(spec["noise_rates"]), len(spec["seeds"])
    fractions = len(spec.get("train_fractions", [1.0]))
    epochs = spec.get("epochs")
    each = f"{_count(epochs, 'epoch')} each" if epochs else "default epochs"
    maps = "PCA and UMAP maps" if spec.get("umap", True) else "PCA maps"
    text = (
        f"Estimated time on this machine: **about {format_duration(seconds)}** for "
        f"{_count(losses * rates * fractions * seeds, 'run')} ({_count(losses, 'loss', 'losses')}"
        f" × {_count(rates, 'noise rate')}"
        + (f" × {_count(fractions, 'train fraction')}" if fractions > 1 else "")
        + f" × {_count(seeds, 'seed')}, {each}), evaluation and {maps}."
    )
    if spec.get("executor") == "ray":
        text += " On Ray, as many runs train at once as the cluster's free CPUs and GPUs allow."
    return text


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def spec_caption(spec: dict[str, Any]) -> str:
    """An experiment's settings in one line: dataset, losses, noise, seeds, epochs (and where it
    trains, when on Ray)."""
    rates = ", ".join(f"{100 * float(r):g}" for r in spec.get("noise_rates", []))
    seeds = ", ".join(str(s) for s in spec.get("seeds", [0]))
    epochs = spec.get("epochs")
    parts = [
        str(spec.get("dataset")),
        ", ".join(loss_name(loss) for loss in spec.get("losses", [])),
        f"{spec.get('noise_kind', 'symmetric')} noise {rates} %",
        f"seed{'s' if len(spec.get('seeds', [0])) > 1 else ''} {seeds}",
        _count(epochs, "epoch") if epochs else "default epochs",
    ]
    if spec.get("train_fractions", [1.0]) != [1.0]:
        kept = ", ".join(f"{100 * float(f):g}" for f in spec["train_fractions"])
        parts.insert(3, f"train data {kept} %")
    if not spec.get("umap", True):
        parts.append("PCA maps only")
    if spec.get("executor") == "ray":
        parts.append(f"on Ray ({spec.get('address') or 'local'})")
    return " · ".join(parts)


# -- watching -------------------------------------------------------------------------------------


def phase_badge(state: dict[str, Any]) -> str:
    """The experiment's phase as a coloured Markdown badge."""
    label, colour = PHASES.get(state.get("phase", ""), (str(state.get("phase")), "gray"))
    return f":{colour}-badge[{label}]"


def experiment_label(state: dict[str, Any]) -> str:
    """A line naming an experiment for the chooser: its name, dataset and number of runs (its
    phase is shown beside it, where it stays current)."""
    dataset = (state.get("spec") or {}).get("dataset")
    parts = [state["name"], *([dataset] if dataset else []), _count(state["total"], "run")]
    return " · ".join(parts)


def status_line(state: dict[str, Any]) -> str:
    """Where the experiment stands in one line: runs done, running, queued, time left."""
    parts = [f"**{state['done']} of {state['total']}** runs done"]
    if state.get("running"):
        parts.append(f"{state['running']} running")
    if state.get("queued"):
        parts.append(f"{state['queued']} queued")
    cancelled = sum(r["state"] == "cancelled" for r in state["runs"])
    if cancelled:
        parts.append(f"{cancelled} cancelled")
    if state.get("alive") and state.get("eta_s") is not None:
        parts.append(f"about {format_duration(state['eta_s'])} of training left")
    return " · ".join(parts)


def overall_fraction(state: dict[str, Any]) -> float:
    """Share of the experiment's training done, in [0, 1]: epochs trained over epochs planned
    (a finished run counts whole)."""
    runs = state.get("runs") or []
    if not runs:
        return 0.0
    return sum(_run_fraction(run) for run in runs) / len(runs)


def _run_fraction(run: dict[str, Any]) -> float:
    if run["state"] == "finished":
        return 1.0
    if not run.get("epochs"):
        return 0.0
    return min(1.0, (run.get("epoch") or 0) / run["epochs"])


MAP_TITLE = METRICS["map@r"].short  # the progress table's column of each run's test MAP@R


def progress_table(state: dict[str, Any]) -> pd.DataFrame:
    """One row per planned run: Run, Loss, Noise rate (%), Seed, State, Epoch ("3 / 25"),
    Progress (% of its epochs), Training loss, Images/s, Time left, MAP@R (NaN where unknown)."""
    rows = []
    for run in state.get("runs") or []:
        epochs = run.get("epochs")
        rows.append(
            {
                "Run": run["run"],
                "Loss": loss_name(run["loss_name"]),
                "Noise rate": 100 * float(run["noise_rate"]),
                "Seed": run["seed"],
                "State": RUN_STATES.get(run["state"], run["state"]),
                "Epoch": f"{run.get('epoch') or 0} / {epochs}" if epochs else MISSING,
                "Progress": 100 * _run_fraction(run),
                "Training loss": run.get("loss"),
                "Images/s": run.get("images_per_s"),
                "Time left": format_duration(run.get("eta_s")) if run["state"] == "running" else "",
                MAP_TITLE: run.get("map@r"),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "Run",
            "Loss",
            "Noise rate",
            "Seed",
            "State",
            "Epoch",
            "Progress",
            "Training loss",
            "Images/s",
            "Time left",
            MAP_TITLE,
        ],
    )
    for column in ("Training loss", "Images/s", MAP_TITLE):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def cancellable_runs(state: dict[str, Any]) -> list[str]:
    """Names of the runs that can still be cancelled one by one (queued or training)."""
    return [r["run"] for r in state.get("runs") or [] if r["state"] in ("queued", "running")]


def can_resume(state: dict[str, Any]) -> bool:
    """Whether Resume has work to do: the process is gone and some run did not finish."""
    return not state.get("alive") and any(r["state"] != "finished" for r in state["runs"])


def watch_key(state: dict[str, Any]) -> tuple:
    """What the rest of the dashboard depends on: changes when the process starts or stops, the
    phase moves on or a run finishes (the page then refreshes the sidebar's run list)."""
    return (state.get("alive"), state.get("phase"), state.get("done"))


# -- the comparison -------------------------------------------------------------------------------


def experiment_runs(runs: pd.DataFrame, folder: str | Path) -> pd.DataFrame:
    """The rows of the runs table (``dmlviz.views.data.list_runs``) that belong to the experiment
    in ``folder`` (its direct subfolders)."""
    if runs.empty:
        return runs
    folder = Path(folder).resolve()
    mask = [Path(p).resolve().parent == folder for p in runs["path"]]
    return runs[mask]


def comparison_figures(runs: pd.DataFrame) -> list[go.Figure]:
    """Test MAP@R and the other metrics the catalogue charts against noise (``Metric.chart_title``
    of ``dmlviz.registry.metrics``: the noise detector's AUROC, the training replay's memorised
    share at the end) when measured, one line per loss, mean ± std over seeds, from an
    experiment's runs."""
    return [
        metric_vs_noise(runs, m.key, m.chart_title)
        for m in METRICS.values()
        if m.chart_title and (m.key == "map@r" or (m.key in runs and runs[m.key].notna().any()))
    ]


def comparison_text(runs: str | Path | pd.DataFrame) -> str:
    """A one-paragraph plain-language reading of a sweep's results (``runs.csv`` or its frame).

    Says which loss lost the least MAP@R from the lowest to the highest noise rate and by how
    much, how the others compare, each loss against each other at the highest rate with its 95 %
    interval and whether that is within noise (where the runs' per-query tables can be read), how
    well neighbour consistency detected the flipped labels at the highest rate, and adds a caveat
    when the seeds disagree by as much as the losses differ (or when there is only one seed, or
    the losses were not tuned alike). Runs that withheld train data count only at the largest
    fraction (``most_data``).
    """
    if not isinstance(runs, pd.DataFrame):
        path = Path(runs)
        runs = pd.read_csv(path / RUNS_CSV if path.is_dir() else path)
    if runs.empty or "map@r" not in runs:
        return "No finished runs yet: nothing to compare."
    summary = most_data(summarize(runs))
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
    sentences += _interval_sentences(runs, high)
    sentences += _detector_sentences(summary, high)
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
    warning = tuning_warning(summary)
    if warning:
        sentences.append("Note: " + warning[0].upper() + warning[1:])
    return " ".join(sentences)


def _interval_sentences(runs: pd.DataFrame, rate: float) -> list[str]:
    """At noise ``rate``, each loss against each other with its 95 % interval (seeds and test
    classes resampled) and whether it is within noise: a sentence each, where the runs' per-query
    tables can be read (``path``)."""
    if "path" not in runs:
        return []
    table = loss_differences(runs[runs["noise_rate"] == rate])
    return [difference_sentence(row) for row in table.to_dict("records")]


def _detector_sentences(summary: pd.DataFrame, high: float) -> list[str]:
    """How well neighbour consistency found the flipped labels at the ``high`` noise rate, and
    from the training replay when it did best: a sentence each, when measured."""
    sentences = []
    at_high = summary[summary["noise_rate"] == high].dropna(subset=["detector_auroc_mean"])
    if not at_high.empty:
        parts = [f"{r['loss']} {r['detector_auroc_mean']:.2f}" for r in at_high.to_dict("records")]
        sentences.append(
            f"At {_pct(high)} noise, flagging training images whose neighbours disagree with their "
            f"label found the flipped ones with AUROC {', '.join(parts)} (0.5 is chance)."
        )
    replayed = at_high.dropna(subset=["auroc_peak_epoch_mean", "memorised_end_mean"])
    if not replayed.empty:
        parts = [f"{r['loss']} at epoch {r['auroc_peak_epoch_mean']:g} with "
                 f"{r['memorised_end_mean']:.0%} memorised at the end"
                 for r in replayed.to_dict("records")]  # fmt: skip
        sentences.append(
            "In the training replay the detector was best (before the network memorised wrong "
            f"labels): {', '.join(parts)}."
        )
    return sentences


def _pct(rate: float) -> str:
    return f"{rate * 100:g} %"


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−") if not math.isnan(value) else "n/a"
