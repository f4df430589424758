"""Choosing where runs train: local stays the default without Ray, ray without Ray says how to fix."""

import json
import subprocess
import sys
import types

import pytest

from dmlviz.cli import main
from dmlviz.experiments import ray_executor
from dmlviz.experiments.ray_executor import RAY_MISSING, connect, import_ray
from dmlviz.experiments.spec import SweepSpec, executor_problems, spec_problems
from dmlviz.experiments.tune import study_storage
from dmlviz.views.lab import form_spec


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError


def test_executor_ray_without_ray_says_how_to_install_it(no_ray, tmp_path, capsys):
    assert RAY_MISSING == (
        "--executor ray needs Ray: pip install -e '.[cluster]' in the dmlviz checkout "
        "(or pip install 'ray>=2.9')"
    )
    with pytest.raises(ImportError, match=r"pip install -e '\.\[cluster\]'"):
        import_ray()
    assert executor_problems("ray") == [RAY_MISSING]
    out = tmp_path / "sweep"
    assert main(["sweep", "--dataset", "digits", "--executor", "ray", "--out", str(out)]) == 2
    assert RAY_MISSING in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written
    assert main(["tune", "--dataset", "digits", "--loss", "rll", "--executor", "ray",
                 "--out", str(tmp_path / "tune")]) == 2  # fmt: skip
    assert RAY_MISSING in capsys.readouterr().err
    _, problems = form_spec("digits", ["rll"], "0", "0", executor="ray")
    assert problems == [RAY_MISSING]


def test_bad_executor_settings_name_the_setting_and_the_fix():
    spec = SweepSpec("digits", ["rll"], [0.0], executor="slurm")
    assert spec_problems(spec) == ["executor='slurm' is invalid: choose one of local, ray"]
    spec = SweepSpec("digits", ["rll"], [0.0], address="head:6379")
    assert spec_problems(spec) == [
        "address='head:6379' is invalid: a Ray address needs executor ray"
    ]
    spec, problems = form_spec("digits", ["rll"], "0", "0", address="head:6379")
    assert problems == [] and "address" not in spec  # the field is unused on this machine


def test_a_study_is_kept_where_its_executor_can_share_it(tmp_path):
    assert study_storage(tmp_path, None) == f"sqlite:///{tmp_path / 'study.db'}"
    assert study_storage(tmp_path, None, "ray") == f"journal:{tmp_path / 'study.journal'}"
    url = "postgresql://user:secret@db/optuna"
    assert study_storage(tmp_path, url, "ray") == url
    with pytest.raises(ValueError, match=r"storage='study\.db' is invalid: give journal:PATH"):
        study_storage(tmp_path, "study.db")
    (tmp_path / "study.db").touch()
    with pytest.raises(ValueError, match="resume it with --executor local"):
        study_storage(tmp_path, None, "ray")


def test_local_stays_the_default_and_never_imports_ray(tmp_path):
    out = tmp_path / "sweep"
    code = (
        "import sys\n"
        "from dmlviz.cli import main\n"
        f"args = ['sweep', '--dataset', 'digits', '--losses', 'rll', '--epochs', '1', "
        f"'--no-umap', '--out', {str(out)!r}]\n"
        "assert main(args) == 0\n"
        "assert 'ray' not in sys.modules, 'the local executor imported ray'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "sweep.json").read_text())["executor"] == "local"


def test_a_bad_storage_is_refused_before_the_tune_folder_is_made(tmp_path):
    from dmlviz.cli import main

    out = tmp_path / "tune"
    args = ["tune", "--dataset", "digits", "--loss", "rll", "--storage", "foo:bar"]
    assert main([*args, "--out", str(out)]) == 2
    assert not out.exists()


def test_without_an_address_ray_starts_its_own_and_never_joins_a_running_one(monkeypatch):
    """Ray's own default (``address=None``) joins the cluster ``ray start`` last started on this
    machine; ours is a local Ray of its own unless an address or $RAY_ADDRESS names one."""
    calls = []
    ray = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: calls.append(kw))
    monkeypatch.setitem(sys.modules, "ray", ray)
    probed = []  # a named address is probed first (test_ray_connect.py tests the probe itself)
    monkeypatch.setattr(ray_executor, "check_reachable", probed.append)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    connect()
    assert calls[-1]["address"] == "local" and calls[-1]["include_dashboard"] is False
    assert probed == []  # nothing to reach: a Ray of our own
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    connect()
    assert calls[-1]["address"] == "head:6379" and "include_dashboard" not in calls[-1]
    connect("other:6379")
    assert calls[-1]["address"] == "other:6379" and probed == ["head:6379", "other:6379"]
