"""The Runs page's views: the runs table, metrics against noise per loss, training curves."""

import numpy as np
import pandas as pd
import pytest
from fake_runs import make_run

from dmlviz.runs import BrokenRun
from dmlviz.views.runs import (
    display_table,
    getting_started,
    metric_vs_noise,
    run_label,
    runs_overview,
    shared_settings,
    training_curves,
)
from dmlviz.views.style import loss_color


def _run(root, name, loss="contextual", rate=0.0, seed=0):
    config = {"loss": loss, "noise_rate": rate, "noise_kind": "symmetric", "seed": seed}
    return make_run(root / name, splits=(), dim=8, config=config)


def _frame(rows):
    base = {
        "state": "finished",
        "preset_source": "paper defaults",
        "recall@1": 0.9,
        "consistency_clean": 0.9,
        "consistency_flipped": 0.2,
        "detector_auroc": 0.8,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def test_overview_separates_broken_runs(tmp_path):
    good = _run(tmp_path, "good")
    (tmp_path / "corrupt").mkdir()
    bad = _run(tmp_path, "bad-eval")
    (bad.path / "eval").mkdir()
    (bad.path / "eval" / "test_metrics.json").write_text("{oops")
    items = [good, BrokenRun(tmp_path / "corrupt", "config.json is corrupt"), bad]
    runs, broken = runs_overview(items)
    assert list(runs["name"]) == ["good"]
    assert set(broken["name"]) == {"corrupt", "bad-eval"}
    assert "corrupt" in broken.set_index("name").loc["bad-eval", "reason"]


def test_overview_of_nothing_has_the_columns():
    runs, broken = runs_overview([])
    assert runs.empty and "path" in runs and "map@r" in runs
    assert broken.empty and list(broken.columns) == ["name", "path", "reason"]


def test_display_table_names_columns_and_losses(tmp_path):
    runs, _ = runs_overview([_run(tmp_path, "r", loss="rll", rate=0.2)])
    table = display_table(runs)
    assert {"Run", "Loss", "MAP@R", "R@1", "Detector AUROC", "Noise rate"} <= set(table.columns)
    assert table["Loss"].iloc[0] == "Ranked List Loss"
    assert table["Noise rate"].iloc[0] == pytest.approx(20)


def test_display_table_leaves_the_loss_of_a_run_without_one_empty(tmp_path):
    runs, _ = runs_overview([_run(tmp_path, "a"), _run(tmp_path, "b", loss="rll")])
    runs.loc[0, "loss"] = float("nan")  # a zero-shot or imported run: no loss trained it
    table = display_table(runs)
    assert pd.isna(table["Loss"].iloc[0])  # shown as a dash, not as the text "nan"
    assert table["Loss"].iloc[1] == "Ranked List Loss"


def test_display_table_states_shared_settings_once(tmp_path):
    runs, _ = runs_overview([_run(tmp_path, "a"), _run(tmp_path, "b", loss="rll")])
    assert shared_settings(runs) == {"dataset": "digits", "noise_kind": "symmetric"}
    assert not {"Dataset", "Noise"} & set(display_table(runs).columns)
    mixed = runs.assign(dataset=["digits", "omniglot"])
    assert "Dataset" in display_table(mixed).columns


def test_run_label():
    label = run_label(
        {"name": "a", "loss": "rll", "noise_rate": 0.4, "noise_kind": "pair", "seed": 1}
    )
    assert label == "a · Ranked List Loss · 40 % pair · seed 1"
    assert "no noise" in run_label(
        {"name": "b", "loss": "contextual", "noise_rate": 0.0, "seed": 0}
    )


def test_metric_vs_noise_one_line_per_loss_with_seed_spread():
    frame = _frame(
        [
            {"loss": "contextual", "noise_rate": 0.0, "seed": 0, "map@r": 0.5},
            {"loss": "contextual", "noise_rate": 0.0, "seed": 1, "map@r": 0.7},
            {"loss": "contextual", "noise_rate": 0.4, "seed": 0, "map@r": 0.4},
            {"loss": "rll", "noise_rate": 0.0, "seed": 0, "map@r": 0.6},
            {"loss": "rll", "noise_rate": 0.4, "seed": 0, "map@r": 0.2, "state": "running"},
        ]
    )
    figure = metric_vs_noise(frame, "map@r")
    lines = {trace.name: trace for trace in figure.data}
    assert set(lines) == {"Contextual", "Ranked List Loss"}
    ctx = lines["Contextual"]
    assert list(ctx.x) == [0, 40]
    assert ctx.y[0] == pytest.approx(0.6)  # mean over the two seeds
    assert ctx.error_y.array[0] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert ctx.line.color == loss_color("contextual")
    assert list(lines["Ranked List Loss"].x) == [0]  # the unfinished run is left out


def test_metric_vs_noise_without_runs_explains():
    figure = metric_vs_noise(pd.DataFrame(), "map@r")
    assert not figure.data
    assert "no finished" in figure.layout.annotations[0].text


def test_training_curves_panels():
    metrics = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [1.0, 0.5, 0.3],
            "map@r": [np.nan, np.nan, 0.4],
            "recall@1": [np.nan, np.nan, 0.8],
        }
    )
    figure = training_curves(metrics, "rll")
    names = [trace.name for trace in figure.data]
    assert names == ["loss", "MAP@R", "R@1"]
    assert list(figure.data[1].x) == [3]  # only evaluated epochs


def test_getting_started_gives_exact_commands(tmp_path):
    text = getting_started(tmp_path / "nowhere")
    assert "does not exist" in text
    assert "make demo" in text
    assert (
        f"dmlviz train --dataset digits --loss contextual --out {tmp_path / 'nowhere'}/ctx" in text
    )
    assert "dmlviz sweep --dataset digits" in text
