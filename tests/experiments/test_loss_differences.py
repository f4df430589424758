"""Loss against loss at each noise rate with hierarchical intervals (experiments/differences.py)."""

from __future__ import annotations

import pandas as pd
from fake_runs import per_query_table, save_per_query

from dmlviz.experiments.differences import (
    difference_sentence,
    differences_markdown,
    loss_differences,
)

CONFIG = {"dataset": "digits", "model": "mlp", "loss": "rll"}


def evaluated(path, make_run, shift: float, seed: int, classes: int = 30) -> str:
    """The path of a run evaluated with ``per_query_table(shift, seed, classes)``."""
    run = make_run(path, splits=(), config=CONFIG)
    return str(save_per_query(run, per_query_table(shift, seed, classes)).path)


def sweep(tmp_path, make_run, shifts: dict[tuple[str, float], float]) -> pd.DataFrame:
    """A runs table of three seeds per (loss, rate), each AP@R raised by ``shifts``."""
    rows = []
    for (loss, rate), shift in shifts.items():
        for seed in range(3):
            path = evaluated(
                tmp_path / f"{loss}-{rate}-{seed}", make_run, shift, 10 * seed + len(rows)
            )
            rows.append({"loss": loss, "noise_rate": rate, "seed": seed, "state": "finished",
                         "path": path})  # fmt: skip
    return pd.DataFrame(rows)


def test_each_pair_at_each_rate_with_its_interval(tmp_path, make_run):
    runs = sweep(tmp_path, make_run, {("rll", 0.0): 0.0, ("contextual", 0.0): 0.0,
                                      ("rll", 0.4): 0.0, ("contextual", 0.4): 0.15})  # fmt: skip
    table = loss_differences(runs, resamples=500)
    assert list(table["noise_rate"]) == [0.0, 0.4]
    assert set(table["loss_a"]) == {"rll"} and set(table["loss_b"]) == {"contextual"}
    assert list(table["metric"]) == ["map@r", "map@r"]
    clean, noisy = table.to_dict("records")
    assert clean["within_noise"] and clean["low"] < 0 < clean["high"]
    assert not noisy["within_noise"] and noisy["low"] > 0
    assert (noisy["seeds_a"], noisy["seeds_b"]) == (3, 3)
    assert "contextual is better" in difference_sentence(noisy)
    assert difference_sentence(clean).startswith("At 0 % noise, MAP@R contextual - rll: ")
    markdown = differences_markdown(table)
    assert "| 40 % | rll | contextual | MAP@R | +0.1" in markdown
    assert "| within noise |" in markdown and "| contextual better |" in markdown


def test_unfinished_runs_and_runs_of_other_splits_are_left_out(tmp_path, make_run):
    runs = sweep(tmp_path, make_run, {("rll", 0.0): 0.0, ("contextual", 0.0): 0.0})
    runs.loc[0, "state"] = "failed"
    other = evaluated(tmp_path / "other", make_run, 0.0, 99, classes=20)
    runs.loc[len(runs)] = {"loss": "ms", "noise_rate": 0.0, "seed": 0, "state": "finished",
                           "path": other}  # fmt: skip
    runs.loc[len(runs)] = {"loss": "ms", "noise_rate": 0.4, "seed": 0, "state": "finished",
                           "path": str(tmp_path / "gone")}  # fmt: skip
    table = loss_differences(runs, resamples=200)
    assert list(zip(table["loss_a"], table["loss_b"], strict=True)) == [("rll", "contextual")]
    assert (table.loc[0, "seeds_a"], table.loc[0, "seeds_b"]) == (2, 3)
    assert differences_markdown(loss_differences(runs.iloc[:0])) == ""


def test_runs_of_another_noise_kind_are_not_seeds_of_the_same_cell(tmp_path, make_run):
    runs = sweep(tmp_path, make_run, {("rll", 0.4): 0.0, ("contextual", 0.4): 0.0})
    runs["noise_kind"] = ["symmetric"] * 3 + ["pair"] * 3
    assert loss_differences(runs, resamples=100).empty
    runs["noise_kind"] = "pair"
    table = loss_differences(runs, resamples=100)
    assert list(table["noise_kind"]) == ["pair"]
    assert difference_sentence(table.iloc[0].to_dict()).startswith("At 40 % pair noise, ")
    assert "| 40 % pair | rll | contextual |" in differences_markdown(table)


def test_runs_on_another_share_of_the_train_data_are_not_seeds_of_the_same_cell(tmp_path, make_run):
    runs = sweep(tmp_path, make_run, {("rll", 0.0): 0.0, ("contextual", 0.0): 0.0})
    runs["train_fraction"] = [1.0] * 3 + [0.5] * 3
    assert loss_differences(runs, resamples=100).empty
    runs["train_fraction"] = 0.5
    table = loss_differences(runs, resamples=100)
    assert list(table["train_fraction"]) == [0.5] and table.loc[0, "seeds_a"] == 3
    sentence = difference_sentence(table.iloc[0].to_dict())
    assert sentence.startswith("At 0 % noise on 50 % of the train data, MAP@R contextual - rll: ")
    assert "| 0 % on 50 % of the train data | rll | contextual |" in differences_markdown(table)
