"""dmlviz tune: a seeded, resumable Optuna search scored by validation folds of the train split."""

import json

import pytest
from shared_files import shared_path

from dmlviz.cli import main
from dmlviz.experiments.tune import (
    SEARCH_SPACES,
    base_config,
    cross_validate,
    settings_of,
    tune,
)
from dmlviz.presets import preset
from dmlviz.registry import LOSSES
from dmlviz.views.tuning import param_importances, study_table


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "digits-rll"
    entry = tune("digits", "rll", out, budget=3, folds=2, epochs=1, log=None)
    return out, entry


def test_search_writes_a_tuned_preset(study):
    out, entry = study
    assert (out / "study.db").exists()
    assert entry["source"] == "tuned on validation"
    assert entry["budget"] == 3 and entry["epochs"] == 1 and entry["folds"] == 2
    assert 0 <= entry["paper_val_map@r"] <= entry["val_map@r"] <= 1  # the paper is a candidate
    assert len(entry["val_map@r_runs"]) == 4  # 2 folds, searched and confirmed
    assert entry["val_map@r"] == pytest.approx(sum(entry["val_map@r_runs"]) / 4, abs=1e-4)
    assert set(entry["confirmed"]) == {"0", "1", "2"} and str(entry["trial"]) in entry["confirmed"]
    assert entry["val_map@r"] == max(entry["confirmed"].values())
    confirm = json.loads((out / "confirm" / "trial-000" / "fold-1" / "config.json").read_text())
    assert (confirm["seed"], confirm["val_fold"]) == (51, 1)  # fresh seeds, same folds
    assert set(entry["loss_kwargs"]) >= {"margin", "alpha", "tn"}
    assert (
        entry["command"]
        == "dmlviz tune --dataset digits --loss rll --budget 3 --folds 2 --epochs 1"
    )
    saved = json.loads((out / "preset.json").read_text())
    assert saved["dataset"] == "digits" and saved["loss"] == "rll"
    assert saved["val_map@r"] == entry["val_map@r"]


def test_trial_zero_is_the_paper_preset_and_folds_never_see_the_test_split(study):
    out, _ = study
    table = study_table(out)
    assert list(table["trial"]) == [0, 1, 2]
    assert {"value", "state", "folds", "lr", "margin", "alpha", "tn"} <= set(table.columns)
    paper = preset("digits", "rll", kind="paper")
    assert table.loc[0, "lr"] == paper["lr"]
    assert table.loc[0, "margin"] == paper["loss_kwargs"]["margin"]
    assert table.loc[0, "alpha"] == paper["loss_kwargs"]["alpha"]
    assert list(table["folds"]) == [2, 2, 2]
    folds = [out / "trials" / "trial-001" / f"fold-{f}" for f in (0, 1)]
    configs = [json.loads((folder / "config.json").read_text()) for folder in folds]
    assert [c["val_fold"] for c in configs] == [0, 1]
    assert [c["seed"] for c in configs] == [0, 1]  # each fold also starts from another seed
    assert all(c["val_fraction"] == 0.2 and c["eval_every"] == 0 for c in configs)
    assert all(c["preset_source"] == "user settings" for c in configs)
    assert not any((folder / "eval").exists() for folder in folds)


def test_importances_and_resume(study):
    out, _ = study
    importances = param_importances(out)
    searched = {p.name for p in LOSSES["rll"].hyperparameters if p.search is not None}
    assert set(importances) <= {"lr", *searched}
    model = out / "confirm" / "trial-000" / "fold-0" / "model.safetensors"
    before = model.stat().st_mtime_ns
    entry = tune("digits", "rll", out, budget=4, folds=2, epochs=1, log=None)
    assert entry["budget"] == 4 and len(study_table(out)) == 4
    assert model.stat().st_mtime_ns == before  # confirmations are kept, not redone
    with pytest.raises(ValueError, match="epochs"):
        tune("digits", "rll", out, budget=5, folds=2, epochs=2, log=None)
    with pytest.raises(ValueError, match="folds=2, not 3"):
        tune("digits", "rll", out, budget=5, folds=3, epochs=1, log=None)


def test_the_search_uses_the_trainers_protocol_and_folds_of_its_train_classes(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DMLVIZ_CACHE_DIR", str(tmp_path))  # the Omniglot zip unpacks here
    config = base_config("digits", "contextual")
    assert config["protocol"] == "samples"  # as dmlviz train: the presets suit what users run
    assert config["val_fraction"] == pytest.approx(0.2)  # two of the ten train digits a fold
    assert config["lr"] == preset("digits", "contextual", kind="paper")["lr"]
    from dmlviz.data import load_dataset

    kwargs = dict(protocol=config["protocol"], val_fraction=config["val_fraction"], val_fold=2)
    train = load_dataset("digits", split="train", **kwargs)
    val = load_dataset("digits", split="val", **kwargs)
    assert set(train.sample_ids).isdisjoint(val.sample_ids)  # held-out images of every digit
    assert val.num_classes == train.num_classes == 10
    assert config["batch_size"] // config["m_per_class"] <= train.num_classes
    archive = shared_path("data", "omniglot", "images_background_small1.zip")
    omniglot = base_config("omniglot", "rll", root=str(archive))
    assert omniglot["protocol"] == "characters" and omniglot["val_fraction"] == pytest.approx(
        14 / 68
    )


def test_cross_validation_stops_when_told(tmp_path):
    config = {**base_config("digits", "triplet"), "epochs": 1}
    seen = []

    class Stop(Exception):
        pass

    def on_fold(fold, score, scores):
        seen.append((fold, score, scores))
        raise Stop

    with pytest.raises(Stop):
        cross_validate(config, 3, tmp_path, on_fold)
    assert [fold for fold, _, _ in seen] == [0] and 0 <= seen[0][1] <= 1
    assert (tmp_path / "fold-0").is_dir() and not (tmp_path / "fold-1").exists()


def test_bad_fold_counts_say_how_many_fit(tmp_path):
    with pytest.raises(ValueError, match="digits holds 5 disjoint folds .* use 1 to 5"):
        tune("digits", "rll", tmp_path / "t", budget=1, folds=6, epochs=1, log=None)
    with pytest.raises(ValueError, match="folds=0 is invalid"):
        tune("digits", "rll", tmp_path / "t", budget=1, folds=0, epochs=1, log=None)


def test_bad_settings_fail_before_a_study_is_created(tmp_path):
    with pytest.raises(ValueError, match="noise_rate=2.0 is invalid"):
        tune("digits", "rll", tmp_path / "t", budget=1, noise_rate=2.0, epochs=1, log=None)
    with pytest.raises(ValueError, match="epochs"):
        tune("digits", "rll", tmp_path / "t", budget=1, epochs=0, log=None)
    assert not (tmp_path / "t").exists()  # no half-made study to resume or clean up


@pytest.mark.parametrize("loss", sorted(SEARCH_SPACES))
def test_each_search_space_round_trips(loss):
    import optuna

    config = base_config("digits", loss)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    from dmlviz.experiments.tune import suggest

    chosen = suggest(trial, loss, config)
    assert settings_of(trial.params, config) == chosen
    from dmlviz.losses import build

    build(loss, **chosen["loss_kwargs"])


def test_cli_rejects_a_bad_budget(tmp_path, capsys):
    code = main(["tune", "--dataset", "digits", "--loss", "rll", "--budget", "0",
                 "--out", str(tmp_path / "t")])  # fmt: skip
    assert code == 2
    assert "budget=0 is invalid: must be an integer >= 1" in capsys.readouterr().err


def test_compare_presets_scores_validation_folds_and_test_seeds_and_reuses_runs(tmp_path):
    from dmlviz.experiments.compare import compare_presets, train_and_score

    rows = compare_presets("digits", ["triplet"], tmp_path, noise_rates=(0.4,), seeds=(0, 1),
                           epochs=1, log=None)  # fmt: skip
    assert [(r["preset"], r["noise_rate"]) for r in rows] == [("paper", 0.4), ("tuned", 0.4)]
    paper, tuned = rows
    assert paper["source"] == "paper defaults"
    assert tuned["source"] == preset("digits", "triplet")["source"]
    folds = preset("digits", "triplet").get("folds") or 4
    for row in rows:
        assert len(row["val_map@r_folds"]) == folds and len(row["test_map@r_seeds"]) == 2
        assert row["val_map@r"] == pytest.approx(sum(row["val_map@r_folds"]) / folds, abs=1e-4)
        assert 0 < row["test_map@r"] < 1 and row["test_map@r_std"] >= 0
    fold = json.loads((tmp_path / "triplet-paper-noise40" / "fold-1" / "config.json").read_text())
    assert (fold["val_fold"], fold["seed"], fold["noise_rate"]) == (1, 101, 0.4)  # fresh seeds
    test = json.loads((tmp_path / "triplet-paper-noise40" / "seed-1" / "config.json").read_text())
    assert test["val_fraction"] is None and test["seed"] == 1 and test["eval_every"] == 0
    model = tmp_path / "triplet-paper-noise40" / "seed-1" / "model.safetensors"
    before = model.stat().st_mtime_ns
    assert compare_presets("digits", ["triplet"], tmp_path, noise_rates=(0.4,), seeds=(0, 1),
                           epochs=1, log=None) == rows  # fmt: skip
    assert model.stat().st_mtime_ns == before  # reused, not retrained
    train_and_score({**test, "lr": test["lr"] * 2}, model.parent, "test")  # other settings
    assert json.loads((model.parent / "config.json").read_text())["lr"] == test["lr"] * 2


def test_the_contextual_search_keeps_its_weights_summing_to_one_and_k_per_class():
    import optuna

    from dmlviz.experiments.tune import suggest

    config = base_config("digits", "contextual", epochs=1)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        kwargs = suggest(study.ask(), "contextual", config)["loss_kwargs"]
        weights = kwargs["ctx_weight"] + kwargs["contrastive_weight"] + kwargs["reg_weight"]
        assert weights == pytest.approx(1.0) or kwargs["contrastive_weight"] == 0.0
        assert 2 <= kwargs["k"] <= config["m_per_class"] and isinstance(kwargs["k"], int)
