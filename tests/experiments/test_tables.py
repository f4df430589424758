"""runs.csv -> summary.csv / summary.md: means and stds over seeds, empty cells, tuning warning."""

import math

import pandas as pd
import pytest

from dmlviz.experiments.reports import summarize, summary_markdown, tuning_warning
from dmlviz.experiments.spec import SweepSpec, run_name


def _runs(sources=None):
    sources = sources or {}
    rows = []
    for loss, base in (("contextual", 0.60), ("rll", 0.55)):
        for rate in (0.0, 0.4):
            for seed in (0, 1):
                rows.append(
                    {
                        "name": run_name(loss, rate, seed),
                        "loss": loss,
                        "noise_kind": "symmetric",
                        "noise_rate": rate,
                        "seed": seed,
                        "state": "finished",
                        "map@r": base - rate / 4 + seed * 0.01,
                        "recall@1": 0.9,
                        "consistency_clean": 0.8,
                        "consistency_flipped": math.nan if rate == 0 else 0.3,
                        "detector_auroc": math.nan if rate == 0 else 0.85 + seed * 0.02,
                        "preset_source": sources.get(loss, "paper defaults"),
                    }
                )
    return pd.DataFrame(rows)


def test_run_names_encode_percent_and_seed():
    assert run_name("rll", 0.2, 3) == "rll-noise20-seed3"
    assert run_name("contextual", 0.0, 0) == "contextual-noise0-seed0"
    assert run_name("triplet", 0.125, 1) == "triplet-noise12.5-seed1"
    spec = SweepSpec("digits", ["a", "b"], [0.0, 0.2], [0, 1])
    names = spec.run_names()
    assert len(names) == 8 and names[:2] == ["a-noise0-seed0", "b-noise0-seed0"]


def test_summary_means_and_stds_over_seeds():
    summary = summarize(_runs())
    assert list(summary["loss"]) == ["contextual", "contextual", "rll", "rll"]
    row = summary[(summary["loss"] == "rll") & (summary["noise_rate"] == 0.4)].iloc[0]
    assert row["seeds"] == 2
    assert row["map@r_mean"] == pytest.approx(0.55 - 0.1 + 0.005)
    assert row["map@r_std"] == pytest.approx(pd.Series([0.45, 0.46]).std())
    clean = summary[(summary["loss"] == "rll") & (summary["noise_rate"] == 0.0)].iloc[0]
    assert math.isnan(clean["detector_auroc_mean"])  # undefined without flipped labels


def test_unfinished_runs_do_not_count():
    runs = _runs()
    runs.loc[0, "state"] = "cancelled"
    summary = summarize(runs)
    assert summary.iloc[0]["seeds"] == 1
    assert math.isnan(summary.iloc[0]["map@r_std"])


def test_markdown_table_and_empty_cells(tmp_path):
    text = summary_markdown(summarize(_runs()), "Sweep")
    assert text.startswith("# Sweep")
    assert "| contextual | 0 % | 2 |" in text
    assert "±" in text
    assert "Warning" not in text
    line = next(line for line in text.splitlines() if line.startswith("| rll | 0 %"))
    assert "|  |" in line  # detector AUROC empty at 0 % noise
    assert summary_markdown(summarize(_runs().iloc[:0])).startswith("No finished runs")


def test_warning_when_only_some_losses_are_tuned():
    runs = _runs({"contextual": "tuned on validation"})
    warning = tuning_warning(summarize(runs))
    assert warning and "contextual" in warning and "rll (paper defaults)" in warning
    assert "**Warning:**" in summary_markdown(summarize(runs))
    assert tuning_warning(summarize(_runs())) is None
