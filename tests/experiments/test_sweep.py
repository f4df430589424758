"""dmlviz sweep end to end on digits: identical noisy labels per (rate, seed), tables, resume, errors."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from dmlviz.cli import main
from dmlviz.experiments.folder import read_progress
from dmlviz.experiments.reports import RUN_COLUMNS
from dmlviz.experiments.runner import run_sweep
from dmlviz.experiments.spec import SweepSpec, plan, spec_problems
from dmlviz.presets import preset
from dmlviz.runs import Run


def _spec(**changes):
    settings = dict(
        dataset="digits", losses=["contextual", "rll"], noise_rates=[0.0, 0.4], seeds=[0],
        epochs=1, umap=False,
    )  # fmt: skip
    return SweepSpec(**{**settings, **changes})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "digits"
    frame = run_sweep(_spec(), out, log=None)
    return out, frame


def test_every_combination_is_trained_evaluated_and_tabled(sweep):
    out, frame = sweep
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert sorted(frame["name"]) == sorted(
        [
            "contextual-noise0-seed0",
            "rll-noise0-seed0",
            "contextual-noise40-seed0",
            "rll-noise40-seed0",
        ]
    )
    assert set(frame["state"]) == {"finished"}
    assert frame["map@r"].between(0, 1).all()
    assert set(frame["preset_source"]) == {preset("digits", "rll")["source"]}
    table = pd.read_csv(out / "runs.csv")
    clean = table[table["noise_rate"] == 0]
    assert clean["detector_auroc"].isna().all()  # an empty cell: undefined without flips
    assert table.loc[table["noise_rate"] == 0.4, "detector_auroc"].notna().all()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and (summary["seeds"] == 1).all()
    assert "| contextual | 40 % | 1 |" in (out / "summary.md").read_text()
    differences = pd.read_csv(out / "differences.csv")  # contextual against rll at each rate
    assert differences[["noise_rate", "loss_a", "loss_b"]].values.tolist() == [
        [0.0, "contextual", "rll"],
        [0.4, "contextual", "rll"],
    ]
    assert "## Loss against loss" in (out / "summary.md").read_text()
    for name in frame["name"]:
        assert Run.load(out / name).projection("test", "pca") is not None


def test_every_run_records_replay_and_the_summary_reads_it(sweep):
    out, frame = sweep
    for name in frame["name"]:
        run = Run.load(out / name)
        assert run.replay_epochs() == [0, 1]  # before training and after the one epoch
        assert run.replay_metrics()["epoch"].tolist() == [0, 1]
    noisy = frame[frame["noise_rate"] == 0.4]
    assert noisy["auroc_peak_epoch"].isin([0, 1]).all()
    assert noisy["memorised_end"].between(0, 1).all()
    assert frame.loc[frame["noise_rate"] == 0, "memorised_end"].isna().all()  # nothing flipped
    summary = pd.read_csv(out / "summary.csv")
    assert summary["memorised_end_mean"].notna().sum() == 2
    assert "| AUROC peak (epoch) | memorised at end |" in (out / "summary.md").read_text()


def test_losses_share_splits_and_noisy_labels(sweep):
    out, _ = sweep
    a = Run.load(out / "contextual-noise40-seed0").labels()
    b = Run.load(out / "rll-noise40-seed0").labels()
    assert a.flipped.any()
    np.testing.assert_array_equal(a.observed, b.observed)
    np.testing.assert_array_equal(a.clean, b.clean)
    config = Run.load(out / "rll-noise40-seed0").config
    assert (config["noise_seed"], config["split_seed"], config["noise_rate"]) == (0, 0, 0.4)


def test_each_loss_takes_its_preset():
    configs = {c["loss"]: c for c in plan(_spec(noise_rates=[0.0]))}
    for loss, config in configs.items():
        entry = preset("digits", loss)
        assert config["loss_kwargs"] == entry["loss_kwargs"] and config["lr"] == entry["lr"]
        assert config["preset_source"] == entry["source"]
    for config in plan(_spec(noise_rates=[0.0], presets="paper")):
        entry = preset("digits", config["loss"], kind="paper")
        assert config["loss_kwargs"] == entry["loss_kwargs"] and config["lr"] == entry["lr"]
        assert config["preset_source"] == "paper defaults"


def test_a_finished_sweep_is_skipped_and_a_cancelled_run_resumes(sweep):
    out, _ = sweep
    run = Run.load(out / "rll-noise0-seed0")
    run.set_status("cancelled", epoch=0, epochs=1)
    (out / "rll-noise0-seed0" / "eval" / "test_metrics.json").unlink()
    before = len(read_progress(out))
    frame = run_sweep(_spec(), out, log=None)
    events = {(r.get("event"), r.get("run")) for r in read_progress(out)[before:]}
    assert ("run_skipped", "contextual-noise0-seed0") in events
    assert ("run_started", "rll-noise0-seed0") in events
    assert set(frame["state"]) == {"finished"}
    assert Run.load(out / "rll-noise0-seed0").eval_metrics("test") is not None


def test_a_folder_of_another_sweep_is_refused(sweep):
    out, _ = sweep
    with pytest.raises(ValueError, match="noise_kind"):
        run_sweep(_spec(noise_kind="pair"), out, log=None)


def test_bad_specs_are_explained():
    assert spec_problems(_spec()) == []
    problems = " | ".join(
        spec_problems(_spec(losses=["nope"], noise_rates=[1.0, -0.1], seeds=[], jobs=0))
    )
    assert "loss='nope' is invalid: choose one of contextual" in problems
    assert (
        "noise_rate=1.0 is invalid: must be a number in [0, 1)" in problems and "-0.1" in problems
    )
    assert "seeds=[] is invalid" in problems and "jobs=0 is invalid" in problems
    assert "losses=[] is invalid: name at least one loss" in spec_problems(_spec(losses=[]))[0]
    assert "protocol" in spec_problems(_spec(protocol="nope"))[0]
    assert "presets='best' is invalid" in spec_problems(_spec(presets="best"))[0]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--losses", "contextual,nope"], "loss='nope' is invalid"),
        (["--noise", "0,1.5"], "noise_rate=1.5 is invalid: must be a number in [0, 1)"),
        (["--noise", ","], "argument --noise: the list is empty"),
        (["--seeds", "0,x"], "argument --seeds: 'x' is not an integer"),
        (["--noise", "a"], "argument --noise: 'a' is not a number"),
    ],
)
def test_cli_rejects_bad_options(tmp_path, capsys, flags, message):
    code = main(["sweep", "--dataset", "digits", "--out", str(tmp_path / "s"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s" / "sweep.json").exists()


def test_cli_runs_a_sweep(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        ["sweep", "--dataset", "digits", "--losses", "triplet", "--noise", "0.2", "--epochs", "1",
         "--no-umap", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert "triplet-noise20-seed0: finished" in capsys.readouterr().out
    assert json.loads((out / "sweep.json").read_text())["losses"] == ["triplet"]
    assert not (out / "folder.lock").exists()


@pytest.mark.slow
def test_parallel_jobs_give_the_same_tables(tmp_path):
    frame = run_sweep(_spec(losses=["rll"], jobs=2), tmp_path / "parallel", log=None)
    assert set(frame["state"]) == {"finished"}
    configs = [Run.load(tmp_path / "parallel" / name).config for name in frame["name"]]
    assert {c["num_threads"] for c in configs} == {max(1, (os.cpu_count() or 1) // 2)}
    epochs = [r for r in read_progress(tmp_path / "parallel") if r.get("event") == "epoch"]
    assert len(epochs) == 2


def test_the_noise_lab_reads_a_command_line_sweep(sweep):
    from dmlviz.experiments.launcher import cancel_experiment
    from dmlviz.experiments.state import experiment_state
    from dmlviz.views.lab import comparison_text

    out, _ = sweep
    cancel_experiment(out)  # a finished sweep has nothing to cancel
    with pytest.raises(ValueError, match="not a run name"):
        cancel_experiment(out, run="../escape")
    state = experiment_state(out)
    assert state["phase"] == "finished" and state["finished"] and not state["alive"]
    assert (state["done"], state["total"], state["queued"]) == (4, 4, 0)
    assert {r["state"] for r in state["runs"]} == {"finished"}
    text = comparison_text(out)
    assert "From 0 % to 40 % symmetric label noise" in text and "single seed" in text
    assert "At 40 % symmetric noise, MAP@R rll - contextual: " in text
    assert "over 1 and 1 seeds" in text


def test_a_folder_keeps_its_preset_kind(sweep, tmp_path):
    from dmlviz.experiments.spec import check_folder as _check_folder

    out, _ = sweep
    other = tmp_path / "copy"
    other.mkdir()
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["presets"] == "tuned"
    (other / "sweep.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="presets='tuned', not 'paper'; choose another --out"):
        run_sweep(_spec(presets="paper"), other, log=None)
    assert sorted(p.name for p in other.iterdir()) == ["sweep.json"]  # nothing written
    del spec["presets"]  # a folder from before the choice existed
    (other / "sweep.json").write_text(json.dumps(spec))
    _check_folder(_spec(presets="paper"), other)
