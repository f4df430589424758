"""The Noise lab page's views: the form's spec and messages, the progress table, the comparison."""

import json
import os

import pandas as pd
import pytest

from dmlviz.experiments.folder import LOCK_FILE
from dmlviz.jobs.process import start_time
from dmlviz.views.lab import (
    can_resume,
    cancellable_runs,
    comparison_figures,
    estimate_text,
    experiment_label,
    experiment_runs,
    form_spec,
    format_duration,
    overall_fraction,
    parse_rates,
    parse_seeds,
    phase_badge,
    problems_markdown,
    progress_table,
    spec_caption,
    status_line,
    watch_key,
)


def test_parse_rates_and_seeds():
    assert parse_rates("0, 0.2, 0.4") == ([0.0, 0.2, 0.4], [])
    assert parse_rates("0 20% ; 40 %") == ([0.0, 0.2, 0.4], [])
    rates, problems = parse_rates("0, abc")
    assert rates == [0.0] and problems == [
        "noise_rate='abc' is invalid: write a number, e.g. 0.2 or 20%"
    ]
    assert parse_rates("") == ([], [])
    assert parse_seeds("0 1,2") == ([0, 1, 2], [])
    assert parse_seeds("0, 1.5")[1] == ["seed='1.5' is invalid: write a whole number"]


def test_form_spec_builds_the_lab_spec():
    spec, problems = form_spec("digits", ["rll"], "0, 0.2", "0", "symmetric", 3, umap=False)
    assert problems == []
    assert spec == {
        "dataset": "digits",
        "losses": ["rll"],
        "noise_rates": [0.0, 0.2],
        "seeds": [0],
        "noise_kind": "symmetric",
        "epochs": 3,
        "umap": False,
        "jobs": 1,
        "presets": "tuned",
    }
    spec, _ = form_spec("digits", ["rll"], "0", "0", name=" mine ")
    _, problems = form_spec("digits", ["rll"], "0", "0", presets="best")
    assert problems == ["presets='best' is invalid: choose one of tuned, paper"]
    assert spec["name"] == "mine"


def test_form_spec_explains_every_problem(tmp_path):
    _, problems = form_spec("digits", [], "0, abc, 1.5", "x", "symmetric", 2)
    text = " | ".join(problems)
    assert "noise_rate='abc' is invalid" in text and "noise_rate=1.5 is invalid: must" in text
    assert "seed='x' is invalid: write a whole number" in text and "losses=[] is invalid" in text
    _, problems = form_spec("folder", ["rll"], "0", "0")
    assert problems == [
        "dataset_root=None is invalid: folder is read from files on this machine: enter its folder"
    ]
    _, problems = form_spec("folder", ["rll"], "0", "0", root=str(tmp_path / "nope"))
    assert problems == [f"dataset_root='{tmp_path / 'nope'}' is invalid: does not exist"]
    _, problems = form_spec("digits", ["rll"], "0", "0", name="../up")
    assert problems[0].startswith("name='../up' is invalid")
    markdown = problems_markdown(["the list of losses is empty; name at least one"])
    assert markdown == "- The list of losses is empty; name at least one."
    assert problems_markdown(["no images. Layout:\n  <root>/<class>"]) == (
        "- No images. Layout: &lt;root>/&lt;class>."
    )


def test_form_spec_checks_the_experiment_folder(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "experiment.json").write_text("{}")
    _, problems = form_spec("digits", ["rll"], "0", "0", name="done", runs_dir=tmp_path)
    assert "already exists" in problems[0]
    (tmp_path / "busy").mkdir()
    lock = {"pid": os.getpid(), "pid_start": start_time(os.getpid())}
    (tmp_path / "busy" / LOCK_FILE).write_text(json.dumps(lock))
    _, problems = form_spec("digits", ["rll"], "0", "0", name="busy", runs_dir=tmp_path)
    assert problems == [
        f"{tmp_path / 'busy'} is in use by process {os.getpid()}: wait for it, cancel it, or "
        "choose another experiment name"
    ]
    assert form_spec("digits", ["rll"], "0", "0", name="new", runs_dir=tmp_path)[1] == []


def test_durations_and_estimate_text():
    assert [format_duration(s) for s in (None, 4.4, 89, 95, 3599, 3600 + 5 * 60)] == [
        "-",
        "4 s",
        "89 s",
        "2 min",
        "1 h 00 min",
        "1 h 05 min",
    ]
    spec = {"losses": ["a", "b"], "noise_rates": [0, 0.2, 0.4], "seeds": [0], "epochs": 1}
    text = estimate_text(150, {**spec, "umap": False})
    assert (
        "about 2 min" in text
        and "6 runs (2 losses × 3 noise rates × 1 seed, 1 epoch each)" in text
        and "1 epoch each" in text
    )
    assert "PCA maps" in text and "UMAP" not in text
    spec_line = spec_caption({**spec, "dataset": "digits", "losses": ["rll"], "umap": False})
    assert (
        spec_line
        == "digits · Ranked List Loss · symmetric noise 0, 20, 40 % · seed 0 · 1 epoch · PCA maps only"
    )
    on_ray = {**spec, "dataset": "digits", "executor": "ray", "address": "head:6379"}
    assert spec_caption(on_ray).endswith("1 epoch · on Ray (head:6379)")
    assert "On Ray, as many runs train at once" in estimate_text(150, on_ray)


def _state(**changes):
    runs = [
        {"run": "rll-noise0-seed0", "loss_name": "rll", "noise_rate": 0.0, "seed": 0,
         "state": "finished", "epoch": 4, "epochs": 4, "loss": 0.1, "images_per_s": 900.0,
         "eta_s": None, "map@r": 0.61},
        {"run": "rll-noise20-seed0", "loss_name": "rll", "noise_rate": 0.2, "seed": 0,
         "state": "running", "epoch": 1, "epochs": 4, "loss": 0.5, "images_per_s": 800.0,
         "eta_s": 3.0, "map@r": None},
        {"run": "rll-noise40-seed0", "loss_name": "rll", "noise_rate": 0.4, "seed": 0,
         "state": "queued", "epoch": 0, "epochs": None, "loss": None, "images_per_s": None,
         "eta_s": None, "map@r": None},
    ]  # fmt: skip
    state = {"name": "exp", "alive": True, "phase": "training", "done": 1, "running": 1}
    state.update(queued=1, total=3, eta_s=15.0, runs=runs)
    state.update(changes)
    return state


def test_progress_table_and_status():
    state = _state()
    table = progress_table(state)
    assert list(table["Run"]) == [r["run"] for r in state["runs"]]
    assert list(table["Epoch"]) == ["4 / 4", "1 / 4", "–"]
    assert list(table["Progress"]) == [100.0, 25.0, 0.0]
    assert table["MAP@R"].iloc[0] == 0.61 and table["MAP@R"].isna().sum() == 2
    assert list(table["Noise rate"]) == [0.0, 20.0, 40.0]
    assert table["Loss"].iloc[0] == "Ranked List Loss" and table["State"].iloc[1].endswith(
        "training"
    )
    assert list(table["Time left"]) == ["", "3 s", ""]
    assert table["MAP@R"].iloc[0] == 0.61
    assert overall_fraction(state) == pytest.approx(1.25 / 3)
    assert status_line(state) == (
        "**1 of 3** runs done · 1 running · 1 queued · about 15 s of training left"
    )
    assert phase_badge(state) == ":blue-badge[training]"
    assert experiment_label(state) == "exp · 3 runs"
    assert experiment_label({**state, "spec": {"dataset": "digits"}}) == "exp · digits · 3 runs"
    assert cancellable_runs(state) == ["rll-noise20-seed0", "rll-noise40-seed0"]
    assert not can_resume(state)
    assert progress_table({"runs": []}).empty and overall_fraction({"runs": []}) == 0


def test_resume_and_watch_key_after_a_cancel():
    running = _state()
    cancelled = _state(alive=False, phase="cancelled", eta_s=None)
    cancelled["runs"][1]["state"] = cancelled["runs"][2]["state"] = "cancelled"
    assert can_resume(cancelled) and cancellable_runs(cancelled) == []
    assert "2 cancelled" in status_line(cancelled) and "left" not in status_line(cancelled)
    assert phase_badge(cancelled) == ":orange-badge[cancelled]"
    assert watch_key(running) != watch_key(cancelled)
    finished = _state(alive=False, phase="finished", done=3)
    for run in finished["runs"]:
        run["state"] = "finished"
    assert not can_resume(finished)


def test_experiment_runs_and_comparison_figures(tmp_path):
    rows = []
    for folder in ("exp", "other"):
        for loss in ("contextual", "rll"):
            for rate in (0.0, 0.4):
                rows.append(
                    {
                        "path": str(tmp_path / folder / f"{loss}-{rate}"),
                        "loss": loss,
                        "noise_rate": rate,
                        "state": "finished",
                        "map@r": 0.6 - rate / (2 if loss == "rll" else 1),
                        "recall@1": 0.9,
                        "consistency_clean": 0.9,
                        "consistency_flipped": None if rate == 0 else 0.3,
                        "detector_auroc": None if rate == 0 else 0.8,
                        "preset_source": "paper defaults",
                    }
                )
    runs = pd.DataFrame(rows)
    mine = experiment_runs(runs, tmp_path / "exp")
    assert len(mine) == 4 and all("/exp/" in p for p in mine["path"])
    figures = comparison_figures(mine)
    assert [f.layout.title.text for f in figures] == [
        "Test MAP@R against label noise",
        "Noise-detector AUROC against label noise",
    ]
    assert {trace.name for trace in figures[0].data} == {"Contextual", "Ranked List Loss"}
    assert list(figures[1].data[0].y) == [0.8]  # no detector without flipped labels
    no_noise = comparison_figures(mine[mine["noise_rate"] == 0])
    assert len(no_noise) == 1
    assert experiment_runs(runs.iloc[:0], tmp_path).empty
