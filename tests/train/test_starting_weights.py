"""Where a run's weights start: defaults that follow the model, --weights, --init-from, the
training-only projector, the papers' recipes and the zero-shot baseline of `dmlviz embed`."""

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from dmlviz.cli import main
from dmlviz.presets.recipes import RECIPES, recipe_config
from dmlviz.runs import Run
from dmlviz.train import ConfigError, resolve_config, train
from dmlviz.train.embed import embed_untrained

TINY = {"dataset": "digits", "epochs": 1, "batches_per_epoch": 2, "eval_every": 0, "num_threads": 1}


def test_defaults_follow_the_chosen_model():
    # issue 17 item 15: folder's defaults (a pretrained ResNet) no longer fail for a convnet
    config = resolve_config({"dataset": "folder", "loss": "rll", "model": "convnet"})
    assert config["pretrained"] is False and config["freeze_bn"] is False
    assert resolve_config({"dataset": "folder", "loss": "rll"})["pretrained"] is True
    with pytest.raises(ConfigError, match="pretrained=True.*not convnet"):
        resolve_config({"dataset": "folder", "loss": "rll", "model": "convnet", "pretrained": True})
    timm_run = resolve_config({"dataset": "omniglot", "loss": "rll", "model": "timm:resnet18"})
    assert timm_run["image_size"] == 224  # the backbone's pretrained input size
    assert timm_run["pretrained"] is False  # omniglot's default: from scratch
    small = resolve_config(
        {"dataset": "omniglot", "loss": "rll", "model": "timm:resnet18", "image_size": 32}
    )
    assert small["image_size"] == 32
    with pytest.raises(ConfigError, match="model='timm:nope'"):
        resolve_config({"dataset": "digits", "loss": "rll", "model": "timm:nope"})


def test_weights_file_starts_a_timm_run_and_the_config_says_so(tmp_path):
    torch.manual_seed(5)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file(state, tmp_path / "r18.safetensors")
    config = {**TINY, "loss": "rll", "model": "timm:resnet18", "image_size": 16,
              "weights": str(tmp_path / "r18.safetensors"), "batch_size": 20, "m_per_class": 4}  # fmt: skip
    run = train(config, tmp_path / "run", progress=False)
    assert run.config["weights_source"] == f"file {tmp_path / 'r18.safetensors'}"
    assert run.config["pretrained"] is False
    assert set(load_file(str(run.path / "model.safetensors"))) == set(run.load_model().state_dict())


def test_init_from_starts_from_a_runs_backbone_and_head(tmp_path):
    source = train({**TINY, "loss": "rll", "embedding_dim": 24}, tmp_path / "pre", progress=False)
    config = {**TINY, "loss": "contextual", "epochs": 1, "init_from": str(source.path)}
    resolved = resolve_config(config)
    assert resolved["embedding_dim"] == 24  # the model settings come from the source run
    run = train({**config, "lr": 1e-12, "backbone_lr": 1e-12}, tmp_path / "ft", progress=False)
    assert run.config["init_from"] == str(source.path)
    assert run.config["weights_source"].startswith(f"run {source.path} (epoch 1)")
    before, after = source.load_model().state_dict(), run.load_model().state_dict()
    torch.testing.assert_close(after["head.linear.weight"], before["head.linear.weight"])
    with pytest.raises(ConfigError, match="init_from.*do not fit"):
        train({**config, "embedding_dim": 8}, tmp_path / "bad", progress=False)
    with pytest.raises(ConfigError, match="init_from"):
        resolve_config({**config, "init_from": str(tmp_path / "absent")})


def test_the_projector_trains_and_resumes_but_is_not_in_the_model(tmp_path):
    config = {
        **TINY,
        "loss": "contextual",
        "epochs": 2,
        "projector_dim": 32,
        "schedule": "constant",
    }
    whole = train(config, tmp_path / "whole", progress=False)
    state = whole.load_trainer_state()
    assert state["loss"]["projector.weight"].shape == (32, whole.config["embedding_dim"])
    assert not any("projector" in k for k in load_file(str(whole.path / "model.safetensors")))
    half = train({**config, "epochs": 1}, tmp_path / "half", progress=False)
    train({"epochs": 2}, half.path, resume=True, progress=False)
    a, b = whole.load_trainer_state(), Run.load(half.path).load_trainer_state()
    torch.testing.assert_close(a["loss"]["projector.weight"], b["loss"]["projector.weight"])
    torch.testing.assert_close(a["model"]["head.linear.weight"], b["model"]["head.linear.weight"])


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_valid_config_that_says_where_it_departs(name):
    config = resolve_config(recipe_config(name))
    assert config["recipe"] == name and config["pretrained"] is True
    assert "Departs from the paper" in RECIPES[name].__doc__
    if name.startswith("contextual-224"):
        assert (config["model"], config["pooling"], config["embedding_dim"]) == (
            "resnet50",
            "gem",
            512,
        )
        assert config["projector_dim"] == (None if name.endswith("sop") else 2048)


def test_recipe_flag_and_overrides(tmp_path, capsys):
    code = main(["train", "--recipe", "nope", "--out", str(tmp_path / "x")])
    assert code == 2 and "recipe='nope' is unknown" in capsys.readouterr().err


def test_zero_shot_baseline_run(tmp_path, capsys):
    run, metrics = embed_untrained({"dataset": "digits"}, tmp_path / "zero-shot")
    assert run.config["loss"] is None and run.config["epochs"] == 0
    assert run.config["embedding_dim"] == 128  # the mlp's own features, through an identity head
    torch.testing.assert_close(
        run.load_model().head.linear.weight, torch.eye(128), rtol=0.0, atol=0.0
    )
    assert 0 < metrics["map@r"] < 1 and run.has_embeddings("train")
    assert run.status()["state"] == "finished"
    assert main(["runs", str(tmp_path)]) == 0
    assert "zero-shot" in capsys.readouterr().out
    code = main(["embed", "--dataset", "digits", "--out", str(tmp_path / "cli")])
    assert code == 0 and "test MAP@R" in capsys.readouterr().out
    assert main(["embed"]) == 2
    fine = train(
        {**TINY, "loss": "rll", "init_from": str(run.path)}, tmp_path / "ft", progress=False
    )
    assert fine.config["embedding_dim"] == 128
