"""dmlviz.registry.settings is the one declaration of each training setting: the config's
defaults, its checks and messages, the resumable keys and the flags of train, sweep and tune all
say what a setting's declaration says."""

from pathlib import Path

import pytest

from dmlviz.cli import build_parser
from dmlviz.registry import names_help
from dmlviz.registry.settings import SETTING, SETTINGS, ConfigError, run_name
from dmlviz.train.config import (
    BASE_CONFIG,
    RESUMABLE_CHANGES,
    check_resume,
    default_config,
    validate_config,
)
from dmlviz.validate import number_range, problem


def _actions(command: str) -> dict:
    """``{dest: argparse action}`` of a ``dmlviz`` command."""
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    return {action.dest: action for action in subparsers.choices[command]._actions}


def test_base_config_is_every_declared_default_in_order():
    assert list(BASE_CONFIG) == [setting.key for setting in SETTINGS]
    assert all(BASE_CONFIG[s.key] == s.default for s in SETTINGS)
    assert tuple(s.key for s in SETTINGS if s.resumable) == RESUMABLE_CHANGES


def test_every_declared_default_passes_its_own_check():
    for setting in SETTINGS:
        if setting.key not in ("dataset", "loss"):  # required: no default
            setting.check(setting.default)


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s.kind in (int, float)], ids=lambda s: s.key
)
def test_a_number_out_of_its_range_is_refused_with_the_range_in_words(setting):
    config = default_config("digits", "rll")
    config[setting.key] = -1
    bounds = dict(low_open=setting.low_open, high_open=setting.high_open)
    allowed = (
        f"must be {number_range(setting.low, setting.high, integer=setting.kind is int, **bounds)}"
    )
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert str(info.value) == problem(setting.key, -1, allowed) and info.value.key == setting.key


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.choices], ids=lambda s: s.key)
def test_a_choice_is_refused_naming_the_choices_and_listed_in_the_flags_help(setting):
    config = default_config("digits", "rll")
    config[setting.key] = "nonsense"
    with pytest.raises(ConfigError, match=f"choose one of {', '.join(setting.choices)}$"):
        validate_config(config)
    if setting.cli_flag:
        assert names_help(list(setting.choices)) in _actions("train")[setting.key].help


def test_a_yes_no_setting_is_a_flag_pair_and_a_number_has_its_type():
    train = _actions("train")
    for setting in SETTINGS:
        if not setting.cli_flag:
            assert setting.key not in train or setting.key == "recipe"  # --recipe: a recipe's name
            continue
        action = train[setting.key]
        assert action.option_strings[0] == setting.cli_flag and action.default is None
        if setting.kind is bool:
            assert action.option_strings == [setting.cli_flag, f"--no-{setting.cli_flag[2:]}"]
        elif setting.kind in (int, float):
            assert action.type is setting.kind


def test_sweep_and_tune_take_a_shared_setting_as_train_does():
    train, sweep, tune = _actions("train"), _actions("sweep"), _actions("tune")
    for key in ("dataset", "noise_kind", "protocol", "dataset_root", "test_root"):
        assert (
            sweep[key].help.startswith(train[key].help)  # dataset: "(required without --spec)"
            and sweep[key].option_strings[0] == SETTING[key].cli_flag
        )
    assert sweep["noise_kind"].default == SETTING["noise_kind"].default
    for key in ("dataset", "loss", "epochs", "val_fraction", "seed", "noise_rate"):
        assert tune[key].option_strings[0] == SETTING[key].cli_flag
        assert tune[key].type is train[key].type
    assert tune["noise_rate"].option_strings == ["--noise"] and tune["noise_rate"].default == 0.0
    assert sweep["dataset_root"].option_strings == ["--dataset-root", "--root"]


def test_every_resumable_setting_may_change_on_resume():
    stored = {**default_config("digits", "contextual"), "image_size": 8, "in_channels": 1}
    given = {key: stored[key] for key in stored}
    given.update(epochs=40, eval_every=2, device="cpu", num_workers=1, num_threads=2,
                 amp="none", compile=True, tensorboard=False)  # fmt: skip
    assert set(given) >= set(RESUMABLE_CHANGES)
    merged = check_resume(stored, given)
    assert all(merged[key] == given[key] for key in RESUMABLE_CHANGES)


def test_one_run_naming_rule_for_train_and_sweeps():
    from dmlviz.cli.train import _default_out
    from dmlviz.experiments.spec import SweepSpec

    config = {"dataset": "digits", "loss": "rll", "noise_rate": 0.2, "seed": 3}
    assert _default_out(config, resume=False) == Path("runs") / "digits-rll-noise20-seed3"
    assert _default_out({"dataset": "digits", "loss": "rll"}, resume=False) == Path(
        "runs/digits-rll-noise0-seed0"
    )
    assert _default_out({**config, "name": "mine"}, resume=False) == Path("runs/mine")
    assert run_name("rll", 0.2, 3, dataset="digits") == "digits-rll-noise20-seed3"
    assert SweepSpec("digits", ["rll"], [0.2], [3]).run_names() == [run_name("rll", 0.2, 3)]
