"""Withheld training data as a sweep axis: run names, configs, checks, reports and charts."""

import math

import pandas as pd

from dmlviz.cli import build_parser
from dmlviz.experiments.reports import summarize, summary_markdown
from dmlviz.experiments.spec import SweepSpec, plan, spec_problems
from dmlviz.registry.settings import run_name
from dmlviz.views.lab import form_spec, spec_caption
from dmlviz.views.runs import metric_vs_noise
from dmlviz.views.withheld import gap_vs_fraction, over_seeds, withheld_figures


def test_run_names_mark_withheld_data_and_keep_old_names():
    assert run_name("rll", 0.2, 3) == "rll-noise20-seed3"
    assert run_name("rll", 0.0, 1, train_fraction=0.25) == "rll-noise0-train25-seed1"


def test_every_fraction_is_a_run_whose_config_records_it():
    spec = SweepSpec("digits", ["contextual", "rll"], [0.0], [0, 1], train_fractions=[1, 0.5])
    assert len(spec.combinations()) == 8 and len(set(spec.run_names())) == 8
    configs = plan(spec)
    assert {c["train_fraction"] for c in configs} == {1.0, 0.5}
    assert all(c["name"].endswith("-train50-seed" + str(c["seed"])) for c in configs
               if c["train_fraction"] == 0.5)  # fmt: skip
    assert SweepSpec.from_dict(spec.to_dict()).train_fractions == [1, 0.5]
    assert SweepSpec.from_dict({"dataset": "digits", "losses": ["rll"], "noise_rates": [0]}
                               ).train_fractions == [1.0]  # fmt: skip


def test_fractions_outside_0_1_and_repeats_are_refused():
    bad = SweepSpec("digits", ["rll"], [0.0], train_fractions=[0.0, 1.5, 0.5, 0.5])
    problems = " ".join(spec_problems(bad))
    assert "train_fraction=0.0" in problems and "train_fraction=1.5" in problems
    assert "give each fraction once" in problems


def test_the_sweep_command_takes_a_comma_separated_axis():
    args = build_parser().parse_args(["sweep", "--dataset", "digits", "--train-fraction",
                                      "1,0.5,0.25", "--out", "x"])  # fmt: skip
    assert args.train_fractions == "1,0.5,0.25"
    assert build_parser().parse_args(["sweep", "--dataset", "digits", "--out", "x"]
                                     ).train_fractions == "1"  # fmt: skip


def test_the_noise_lab_form_takes_fractions_as_it_takes_rates():
    spec, problems = form_spec("digits", ["rll"], "0", "0", fractions_text="100%, 50%, 25%")
    assert not problems and spec["train_fractions"] == [1.0, 0.5, 0.25]
    assert "train data 100, 50, 25 %" in spec_caption(spec)
    spec, _ = form_spec("digits", ["rll"], "0", "0")
    assert "train_fractions" not in spec  # all the data: the spec is as before
    _, problems = form_spec("digits", ["rll"], "0", "0", fractions_text="half")
    assert any("train_fraction" in p for p in problems)


def _runs():
    rows = []
    for loss, base in (("contextual", 0.6), ("rll", 0.5)):
        for fraction in (1.0, 0.5, 0.25):
            for seed in (0, 1):
                test = base * fraction**0.2 + seed * 0.01
                rows.append({"name": run_name(loss, 0.0, seed, train_fraction=fraction),
                             "loss": loss, "noise_kind": "symmetric", "noise_rate": 0.0,
                             "train_fraction": fraction, "seed": seed, "state": "finished",
                             "map@r": test, "recall@1": test + 0.2, "train_map@r": 0.9,
                             "preset_source": "paper defaults"})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_summary_groups_by_fraction_and_says_so():
    summary = summarize(_runs())
    assert len(summary) == 6 and set(summary["train_fraction"]) == {1.0, 0.5, 0.25}
    row = summary[(summary["loss"] == "rll") & (summary["train_fraction"] == 0.25)].iloc[0]
    assert row["seeds"] == 2 and math.isclose(row["map@r_mean"], 0.5 * 0.25**0.2 + 0.005)
    text = summary_markdown(summary)
    assert "| train data |" in text and "| 25 % |" in text
    assert "train data" not in summary_markdown(summarize(_runs().query("train_fraction == 1")))


def test_charts_against_the_fraction_and_the_gap():
    runs = _runs()
    table = over_seeds(runs, "map@r")
    assert table["loss"].tolist() == ["contextual"] * 3 + ["rll"] * 3
    assert table["train_fraction"].tolist() == [0.25, 0.5, 1.0] * 2
    gap = gap_vs_fraction(runs)
    rll = next(trace for trace in gap.data if trace.name.startswith("R"))
    assert list(rll.x) == [25, 50, 100]
    assert math.isclose(rll.y[0], 0.9 - (0.5 * 0.25**0.2 + 0.005))
    assert len(withheld_figures(runs)) == 3
    assert withheld_figures(runs[runs["train_fraction"] == 1]) == []
    noise = metric_vs_noise(runs, "map@r")  # only the runs with all their train data
    assert all(len(trace.x) == 1 for trace in noise.data)


def test_the_runs_table_shows_the_train_data_only_where_some_run_withheld_it():
    from dmlviz.views.runs import display_table, run_label, shared_settings

    runs = _runs().assign(split_layout="seeded class split", test_classes_in_train=0)
    shown = display_table(runs)
    assert sorted(set(shown["Train data"])) == [25.0, 50.0, 100.0]
    assert "Train data" not in display_table(runs[runs["train_fraction"] == 1])
    assert "train_fraction" not in shared_settings(runs[runs["train_fraction"] == 1])
    assert shared_settings(runs[runs["train_fraction"] == 0.5])["train_fraction"] == 0.5
    assert run_label(runs.iloc[-1]).endswith("25 % of train data · seed 1")


def test_the_noise_comparison_reads_the_runs_with_the_most_data():
    from dmlviz.views.lab import comparison_text

    runs = _runs()
    noisy = runs.assign(noise_rate=0.4, **{"map@r": runs["map@r"] - 0.1})
    text = comparison_text(pd.concat([runs, noisy], ignore_index=True))
    assert "From 0 % to 40 %" in text and "(0.605 → 0.505" in text
