"""Config defaults and validation: every error names the key, the value and what is allowed."""

import pytest
import torch

from dmlviz.train import (
    BASE_CONFIG,
    ConfigError,
    amp_dtype,
    default_config,
    pick_device,
    resolve_config,
)
from dmlviz.train.config import check_resume


def test_default_digits_config_is_complete_and_small():
    config = default_config("digits", "contextual")
    assert set(config) == set(BASE_CONFIG)
    assert config["model"] == "mlp"
    assert config["batch_size"] % config["m_per_class"] == 0
    assert config["protocol"] == "samples"  # all ten digits in both splits
    assert config["batch_size"] // config["m_per_class"] <= 10
    assert config["preset_source"] == "tuned on validation"  # shipped presets are the default
    assert default_config("digits", "contextual", presets="paper")["preset_source"] == (
        "paper defaults"
    )


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"dataset": "mnist"}, "dataset", "choose one of .*digits"),
        ({"loss": "arcface"}, "loss", "choose one of .*contextual"),
        ({"model": "vit"}, "model", "choose one of mlp, convnet, resnet18, resnet50"),
        ({"noise_rate": 1.0}, "noise_rate", r"number in \[0.0, 1.0\)"),
        ({"noise_rate": -0.1}, "noise_rate", r"number in \[0.0, 1.0\)"),
        ({"noise_kind": "random"}, "noise_kind", "symmetric, pair, nearest_class"),
        ({"epochs": 0}, "epochs", "integer >= 1"),
        ({"epochs": 2.5}, "epochs", "integer >= 1"),
        ({"m_per_class": 7}, "m_per_class", "must divide batch_size=60"),
        ({"m_per_class": 60}, "m_per_class", "fewer than 2 classes"),
        ({"lr": 0}, "lr", r"number in \(0.0, inf\)"),
        ({"optimizer": "adam"}, "optimizer", "adamw, sgd"),
        ({"schedule": "linear"}, "schedule", "cosine, step, constant"),
        ({"amp": "fp8"}, "amp", "auto, bf16, fp16, none"),
        ({"augment": "yes"}, "augment", "true or false"),
        ({"device": "gpu0"}, "device", "auto, cpu, cuda"),
        ({"pooling": "sum"}, "pooling", "gem, avg, max"),
        ({"pretrained": True}, "pretrained", "resnet18, resnet50"),
        ({"loss_kwargs": {"no_such_hyperparameter": 1}}, "loss_kwargs", "contextual"),
        ({"lr_rate": 0.1}, "lr_rate", "unknown key; known keys: name, dataset"),
    ],
)
def test_bad_values_are_named(changes, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_config({"dataset": "digits", "loss": "contextual", **changes})
    assert info.value.key == key
    assert f"{key}=" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_partial_configs_are_filled_from_the_dataset_defaults():
    config = resolve_config({"dataset": "digits", "loss": "rll", "epochs": 3})
    assert config["epochs"] == 3 and config["model"] == "mlp" and config["loss"] == "rll"
    with pytest.raises(ConfigError, match="is required"):
        resolve_config({"dataset": "digits"})


def test_resume_may_only_change_run_independent_settings():
    stored = {**default_config("digits", "contextual"), "image_size": 8, "in_channels": 1}
    merged = check_resume(stored, {"epochs": 40, "image_size": None, "loss": "contextual"})
    assert merged["epochs"] == 40 and merged["image_size"] == 8
    # in config order, as dmlviz.registry.settings declares them resumable
    only = "only num_workers, epochs, device, num_threads, amp, compile, eval_every, tensorboard "
    with pytest.raises(ConfigError, match=only + "may change on resume"):
        check_resume(stored, {"loss": "rll"})


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device(None) == pick_device("auto") != torch.device("cuda")
        with pytest.raises(ValueError, match="CUDA is not available here"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="device='gpu0' is unknown"):
        pick_device("gpu0")
    assert amp_dtype("auto", torch.device("cpu")) is None
    assert amp_dtype("fp16", torch.device("cuda")) is torch.float16


def test_loss_settings_given_in_python_are_labelled_user_settings():
    base = {"dataset": "digits", "loss": "rll"}
    assert resolve_config(base)["preset_source"] == "tuned on validation"
    assert resolve_config({**base, "lr": 0.01})["preset_source"] == "user settings"
    given = resolve_config({**base, "loss_kwargs": {"margin": 0.3}})
    assert given["preset_source"] == "user settings"
    stated = {**base, "lr": 0.01, "preset_source": "paper defaults"}
    assert resolve_config(stated)["preset_source"] == "paper defaults"  # said so: kept
