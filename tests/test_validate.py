"""dmlviz.validate: one message for a bad value, whoever checks it (loss, config, tune, CLI)."""

import pytest

from dmlviz.losses import build
from dmlviz.train import ConfigError, resolve_config
from dmlviz.validate import InvalidValue, check_choice, check_flag, check_number


def test_messages_name_the_argument_the_value_and_what_is_allowed():
    cases = [
        (lambda: check_number("k", 1, 2, integer=True), "k=1 is invalid: must be an integer >= 2"),
        (lambda: check_number("p", 1.0, 0, 1, high_open=True), r"p=1.0 is invalid: .* \[0, 1\)"),
        (lambda: check_number("x", float("nan")), "x=nan is invalid: must be a number"),
        (lambda: check_number("n", True, 0, integer=True), "n=True is invalid"),
        (lambda: check_choice("mode", "b", ("a", "c")), "mode='b' is invalid: choose one of a, c"),
        (lambda: check_flag("on", 1), "on=1 is invalid: must be true or false"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidValue, match=message) as info:
            call()
        assert isinstance(info.value, ValueError)


def test_losses_config_tune_and_cli_read_the_same(tmp_path, capsys):
    from dmlviz.cli import main
    from dmlviz.experiments.tune import tune

    with pytest.raises(InvalidValue, match="^eps=-1 is invalid: must be a number in"):
        build("contextual", eps=-1)
    with pytest.raises(ConfigError, match="^epochs=0 is invalid: must be an integer >= 1$") as info:
        resolve_config({"dataset": "digits", "loss": "rll", "epochs": 0})
    assert isinstance(info.value, InvalidValue) and info.value.key == "epochs"
    with pytest.raises(InvalidValue, match="^budget=0 is invalid: must be an integer >= 1$"):
        tune("digits", "rll", tmp_path / "t", budget=0, log=None)
    assert main(["evaluate", str(tmp_path), "--k", "0"]) == 2
    assert "--k=0 is invalid: must be an integer >= 1" in capsys.readouterr().err


def test_a_bad_loss_hyperparameter_in_a_config_names_it_once():
    with pytest.raises(ConfigError) as info:
        resolve_config({"dataset": "digits", "loss": "contextual", "loss_kwargs": {"k": 0}})
    assert str(info.value) == "loss_kwargs={'k': 0} is invalid: k must be an integer >= 2"
