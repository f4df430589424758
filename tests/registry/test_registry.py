"""dmlviz.registry is the one source of each loss's facts: build(), the presets, tune, the
views and the CLI all say what its entry says."""

import json

import pytest
import torch

from dmlviz.losses import build
from dmlviz.presets import PAPER_DIR, preset
from dmlviz.registry import BACKBONES, LOSSES, backbone_help, loss_help
from dmlviz.train.config import DATASET_DEFAULTS, default_config


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_build_gives_the_registered_defaults(name):
    loss = build(name)
    for key, value in LOSSES[name].defaults.items():
        assert getattr(loss, key) == value, key
    assert build(name, **LOSSES[name].defaults).__class__ is loss.__class__


def test_the_defaults_the_papers_give():
    # Multi-similarity: lambda (base) 1 in Wang et al. 2019; triplet: FaceNet's margin 0.2.
    assert LOSSES["multisimilarity"].defaults == {"alpha": 2.0, "beta": 50.0, "base": 1.0}
    assert LOSSES["triplet"].defaults == {"margin": 0.2}
    assert build("multisimilarity").base == 1.0 and build("triplet").margin == 0.2


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_paper_presets_are_the_registered_defaults(name):
    entry = LOSSES[name]
    for path in sorted(PAPER_DIR.glob("*.json")):
        shipped = json.loads(path.read_text())[name]
        expected = dict(entry.defaults)
        if entry.per_class:
            expected[entry.per_class] = DATASET_DEFAULTS[path.stem]["m_per_class"]
        assert shipped["loss_kwargs"] == expected, path
        assert shipped["reference"] == entry.reference and shipped["source"] == "paper defaults"
    fallback = preset("cub200", name, kind="paper")  # no file: the registry itself
    assert fallback["loss_kwargs"] == entry.defaults and fallback["reference"] == entry.reference
    config = default_config("cub200", name, presets="paper")
    assert config["loss_kwargs"] == entry.defaults


def test_tune_views_and_cli_read_the_registry():
    from dmlviz.cli import build_parser
    from dmlviz.experiments.tune import SEARCH_SPACES
    from dmlviz.views.anatomy import PARAMS, default_params
    from dmlviz.views.style import loss_color, loss_name

    assert {name: entry.search for name, entry in LOSSES.items()} == SEARCH_SPACES
    for name, entry in LOSSES.items():
        assert (loss_name(name), loss_color(name)) == (entry.display_name, entry.color)
    for name, params in PARAMS.items():
        defaults = default_params(name)
        assert {p.name: defaults[p.name] for p in params} == {
            p.name: LOSSES[name].defaults[p.name] for p in params
        }
    commands = build_parser()._subparsers._group_actions[0].choices
    helps = {
        (command, option): action.help
        for command in ("train", "tune")
        for action in commands[command]._actions
        for option in action.option_strings
    }
    assert helps["train", "--loss"] == helps["tune", "--loss"] == loss_help()
    assert helps["train", "--model"] == backbone_help()
    assert all(name in loss_help() for name in LOSSES)
    assert all(name.rstrip(":") in backbone_help() for name in BACKBONES)


def test_models_and_the_config_check_read_the_backbone_registry():
    from dmlviz.models import MODELS, PRETRAINED, TIMM_PREFIX, build_model, has_pretrained
    from dmlviz.train import ConfigError, resolve_config

    assert BACKBONES[TIMM_PREFIX].prefix and [n for n, e in BACKBONES.items() if e.prefix] == [
        TIMM_PREFIX
    ]
    assert list(MODELS) == [name for name in BACKBONES if name != TIMM_PREFIX]
    assert tuple(name for name in MODELS if BACKBONES[name].pretrained) == PRETRAINED
    for name in MODELS:
        assert has_pretrained(name) == BACKBONES[name].pretrained
        model = build_model(name, embedding_dim=8, in_channels=1, image_size=16)
        assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 8)
    with pytest.raises(ConfigError, match="model='vit' is invalid: choose one of ") as info:
        resolve_config({"dataset": "digits", "loss": "rll", "model": "vit"})
    assert backbone_help() in info.value.allowed


def test_the_loss_files_defaults_are_the_registered_ones():
    import inspect

    from dmlviz.losses import ContextualLoss, RankedListLoss
    from dmlviz.losses.contextual import PRESETS

    assert PRESETS["256px"] == LOSSES["contextual"].defaults
    for name, cls in (("contextual", ContextualLoss), ("rll", RankedListLoss)):
        signature = inspect.signature(cls)
        defaults = dict(LOSSES[name].defaults)
        if name == "rll":  # RankedListLoss(alpha=None) is 1 + margin / 2
            assert signature.parameters["alpha"].default is None
            assert defaults.pop("alpha") == 1 + defaults["margin"] / 2
        assert {key: signature.parameters[key].default for key in defaults} == defaults
