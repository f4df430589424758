"""dmlviz tune: a seeded, resumable Optuna search on validation classes that writes a preset."""

import json

import pytest

from dmlviz.cli import main
from dmlviz.presets import preset
from dmlviz.tune import (
    SEARCH_SPACES,
    base_config,
    param_importances,
    settings_of,
    study_table,
    tune,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "digits-rll"
    entry = tune("digits", "rll", out, budget=3, epochs=1, log=None)
    return out, entry


def test_search_writes_a_tuned_preset(study):
    out, entry = study
    assert (out / "study.db").exists()
    assert entry["source"] == "tuned on validation"
    assert entry["budget"] == 3 and entry["epochs"] == 1
    assert 0 <= entry["default_val_map@r"] <= entry["val_map@r"] <= 1
    assert set(entry["loss_kwargs"]) >= {"margin", "alpha", "tn"}
    saved = json.loads((out / "preset.json").read_text())
    assert saved["dataset"] == "digits" and saved["loss"] == "rll"
    assert saved["val_map@r"] == entry["val_map@r"]


def test_trial_zero_is_the_preset_and_trials_never_see_the_test_split(study):
    out, _ = study
    table = study_table(out)
    assert list(table["trial"]) == [0, 1, 2]
    assert {"value", "state", "lr", "margin", "alpha", "tn"} <= set(table.columns)
    shipped = preset("digits", "rll")
    assert table.loc[0, "lr"] == shipped["lr"]
    assert table.loc[0, "margin"] == shipped["loss_kwargs"]["margin"]
    assert table.loc[0, "alpha"] == shipped["loss_kwargs"]["alpha"]
    config = json.loads((out / "trials" / "trial-001" / "config.json").read_text())
    assert config["val_fraction"] > 0 and config["eval_every"] == 0
    assert not (out / "trials" / "trial-001" / "eval").exists()


def test_importances_and_resume(study):
    out, _ = study
    importances = param_importances(out)
    assert set(importances) <= {"lr", "margin", "alpha", "tn"}
    entry = tune("digits", "rll", out, budget=4, epochs=1, log=None)
    assert entry["budget"] == 4 and len(study_table(out)) == 4
    with pytest.raises(ValueError, match="epochs"):
        tune("digits", "rll", out, budget=5, epochs=2, log=None)


def test_validation_classes_leave_the_train_split():
    config = base_config("digits", "contextual")
    assert config["protocol"] == "classes"  # class-disjoint: validation never uses test digits
    assert config["val_fraction"] == pytest.approx(0.4)  # two of the five train digits
    from dmlviz.data import load_dataset

    kwargs = dict(protocol=config["protocol"], val_fraction=config["val_fraction"])
    train = load_dataset("digits", split="train", **kwargs)
    val = load_dataset("digits", split="val", **kwargs)
    test = load_dataset("digits", split="test", protocol="classes")
    assert set(train.class_names).isdisjoint(val.class_names) and val.num_classes == 2
    assert set(val.class_names).isdisjoint(test.class_names)
    assert config["batch_size"] // config["m_per_class"] <= train.num_classes


@pytest.mark.parametrize("loss", sorted(SEARCH_SPACES))
def test_each_search_space_round_trips(loss):
    import optuna

    config = base_config("digits", loss)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    from dmlviz.tune import suggest

    chosen = suggest(trial, loss, config)
    assert settings_of(trial.params, config) == chosen
    from dmlviz.losses import build

    build(loss, **chosen["loss_kwargs"])


def test_cli_rejects_a_bad_budget(tmp_path, capsys):
    code = main(["tune", "--dataset", "digits", "--loss", "rll", "--budget", "0",
                 "--out", str(tmp_path / "t")])  # fmt: skip
    assert code == 2
    assert "budget 0 must be an integer >= 1" in capsys.readouterr().err
