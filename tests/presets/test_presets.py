"""The shipped presets: every (dataset, loss) is present, builds its loss and passes the config check."""

import json

import pytest

from dmlviz.losses import LOSSES, build
from dmlviz.presets import (
    PAPER_DIR,
    apply_preset,
    load_presets,
    paper_presets,
    preset,
    preset_table,
    write_preset,
)
from dmlviz.train import default_config, validate_config


@pytest.mark.parametrize("dataset", ["digits", "omniglot"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_has_a_preset_that_trains(dataset, loss):
    entry = preset(dataset, loss)
    assert entry["dataset"] == dataset and entry["loss"] == loss
    assert entry["source"] in ("tuned on validation", "paper defaults")
    assert entry["lr"] > 0
    build(loss, **entry["loss_kwargs"])
    config = validate_config(apply_preset(default_config(dataset, loss)))
    assert config["loss_kwargs"] == entry["loss_kwargs"] and config["lr"] == entry["lr"]
    assert config["preset_source"] == entry["source"]
    if entry["source"] == "tuned on validation":
        provenance = {"date", "budget", "folds", "val_map@r", "paper_val_map@r", "command"}
        assert provenance | {"epochs", "val_fraction", "protocol"} <= set(entry)
        assert entry["command"].startswith(f"dmlviz tune --dataset {dataset} --loss {loss} ")
        assert entry["epochs"] == default_config(dataset, loss)["epochs"]  # tuned as trained
    else:
        assert entry["reference"]


@pytest.mark.parametrize("dataset", ["digits", "omniglot"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_the_paper_defaults_stay_available(dataset, loss):
    entry = preset(dataset, loss, kind="paper")
    assert entry["source"] == "paper defaults" and entry["reference"]
    config = default_config(dataset, loss, presets="paper")
    assert config["loss_kwargs"] == entry["loss_kwargs"] and config["lr"] == entry["lr"]
    assert config["preset_source"] == "paper defaults"


def test_contextual_k_is_the_images_per_class_in_the_paper_defaults():
    for dataset in ("digits", "omniglot"):
        config = default_config(dataset, "contextual", presets="paper")
        assert (
            preset(dataset, "contextual", kind="paper")["loss_kwargs"]["k"] == config["m_per_class"]
        )


def test_other_datasets_fall_back_to_paper_defaults():
    entry = preset("cub200", "rll")
    assert entry["source"] == "paper defaults" and entry["lr"] is None
    config = apply_preset(default_config("cub200", "rll"))
    assert config["lr"] == default_config("cub200", "rll")["lr"]  # the trainer's own default
    with pytest.raises(ValueError, match="unknown loss"):
        preset("digits", "nope")
    with pytest.raises(ValueError, match="preset kind 'best' is unknown"):
        preset("digits", "rll", kind="best")
    with pytest.raises(ValueError, match="presets='best' is invalid"):
        default_config("digits", "rll", presets="best")


def test_write_preset_keeps_the_other_losses(tmp_path):
    entry = {
        "loss_kwargs": {"margin": 0.3},
        "lr": 0.001,
        "source": "tuned on validation",
        "date": "2026-01-01",
        "budget": 5,
        "val_map@r": 0.5,
    }
    write_preset("digits", "triplet", entry, folder=tmp_path)
    write_preset("digits", "rll", {**entry, "loss_kwargs": {"margin": 0.2}}, folder=tmp_path)
    table = load_presets("digits", folder=tmp_path)
    assert table["triplet"] == entry and table["rll"]["loss_kwargs"] == {"margin": 0.2}
    assert preset("digits", "triplet", folder=tmp_path)["source"] == "tuned on validation"
    assert preset("digits", "triplet", folder=tmp_path, kind="paper")["source"] == "paper defaults"
    # a loss without a tuned entry in the folder keeps its paper defaults
    assert preset("digits", "contrastive", folder=tmp_path) == preset(
        "digits", "contrastive", kind="paper"
    )
    with pytest.raises(ValueError, match="source"):
        write_preset("digits", "triplet", {**entry, "source": "guess"}, folder=tmp_path)
    with pytest.raises(ValueError, match="only 'tuned on validation' entries"):
        write_preset("digits", "triplet", {**entry, "source": "paper defaults"}, folder=tmp_path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="corrupt"):
        load_presets("broken", folder=tmp_path)
    assert load_presets("digits", PAPER_DIR)["rll"]["source"] == "paper defaults"


def test_preset_table_lists_the_shipped_presets():
    rows = preset_table()
    pairs = {(r["dataset"], r["loss"]) for r in rows}
    assert {(d, loss) for d in ("digits", "omniglot") for loss in LOSSES} <= pairs
    assert all(r["dataset"] != "defaults" for r in rows)
    json.dumps(rows)  # plain values only


@pytest.mark.parametrize("path", sorted(PAPER_DIR.glob("*.json")), ids=lambda path: path.stem)
def test_the_paper_preset_files_are_generated_from_the_registry(path):
    assert json.loads(path.read_text()) == paper_presets(path.stem), (
        f"{path} differs from the registry: run python -m dmlviz.presets"
    )
