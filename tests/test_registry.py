"""dmlviz.registry is the one source of each loss's facts: build(), the presets, tune, the
views and the CLI all say what its entry says."""

import json

import pytest

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
