"""The package's entry points: every command group is present and `python -m dmlviz` answers."""

import importlib
import subprocess
import sys

import pytest

from dmlviz.cli import COMMAND_MODULES, build_parser


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_every_command_group_exists(name):
    module = importlib.import_module(f"dmlviz.cli.{name}")
    assert callable(module.register)


def test_cli_lists_every_command():
    help_text = build_parser().format_help()
    for command in (
        "train",
        "runs",
        "embed",
        "evaluate",
        "project",
        "sweep",
        "tune",
        "dashboard",
        "demo",
        "compare",
    ):
        assert command in help_text


def test_python_m_dmlviz_reports_unknown_command():
    result = subprocess.run(
        [sys.executable, "-m", "dmlviz", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
