"""The Noise lab page under AppTest: the form's messages, and a real experiment started from the
page, watched, cancelled, resumed and compared, with its run joining the sidebar."""

from __future__ import annotations

import json
import os
import time

import pytest
from shared_files import HANG_GUARD_S

from dmlviz.experiments.folder import (
    EXPERIMENT_FILE,
    LOCK_FILE,
    read_progress,
)
from dmlviz.experiments.launcher import cancel_experiment
from dmlviz.experiments.state import experiment_state
from dmlviz.jobs.process import start_time


@pytest.fixture
def lab_app(tmp_path, monkeypatch):
    """The dashboard on an empty runs folder, on the Noise lab page."""
    import streamlit as st
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S).run()
    assert not app.exception
    app.switch_page("app_pages/noise_lab.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _errors(app) -> str:
    return " ".join(e.value for e in app.error)


def test_form_explains_bad_input(lab_app, tmp_path):
    app = lab_app
    assert app.title[0].value == "Noise lab"
    assert not app.error and "Estimated time on this machine" in app.info[0].value
    assert "No experiment in" in app.info[1].value
    assert not app.button(key="lab_start").disabled

    app.text_input(key="lab_rates").set_value("0, abc, 1.5").run()
    assert "noise_rate='abc' is invalid: write a number" in _errors(app)
    assert "noise_rate=1.5 is invalid: must be a number in [0, 1)" in _errors(app)
    assert app.button(key="lab_start").disabled

    app.text_input(key="lab_rates").set_value("0.2")
    app.multiselect(key="lab_losses").set_value([]).run()
    assert "losses=[] is invalid" in _errors(app) and "noise_rate" not in _errors(app)

    app.multiselect(key="lab_losses").set_value(["rll"])
    app.selectbox(key="lab_dataset").set_value("folder").run()
    assert (
        "dataset_root=None is invalid: folder is read from files on this machine: enter its folder"
        in _errors(app)
    )
    app.text_input(key="lab_root").set_value(str(tmp_path / "no-such-dir")).run()
    assert f"dataset_root='{tmp_path / 'no-such-dir'}' is invalid: does not exist" in _errors(app)
    assert app.button(key="lab_start").disabled
    empty = tmp_path / "empty"
    empty.mkdir()
    app.text_input(key="lab_root").set_value(str(empty)).run()  # exists, but holds no images
    assert f"Cannot read folder from {empty}:" in _errors(app)
    assert app.button(key="lab_start").disabled


def test_a_ray_cluster_can_be_chosen_with_its_address(lab_app):
    app = lab_app
    assert app.selectbox(key="lab_executor").value == "local"
    assert (
        app.text_input(key="lab_address").disabled and not app.number_input(key="lab_jobs").disabled
    )
    app.selectbox(key="lab_executor").set_value("ray").run()
    assert not app.error and not app.text_input(key="lab_address").disabled
    assert app.number_input(key="lab_jobs").disabled  # the cluster decides how many run at once
    assert "On Ray, as many runs train at once" in app.info[0].value


def test_title_is_drawn_before_the_training_code_loads(tmp_path, monkeypatch):
    """The title and its caption come before the imports of torch & co. (seconds on a first visit):
    with the training code made unimportable, the page still shows them above the error."""
    import sys

    import streamlit as st
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(tmp_path))
    st.cache_data.clear()
    app = AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S).run()
    monkeypatch.setitem(sys.modules, "dmlviz.train", None)
    app.switch_page("app_pages/noise_lab.py").run()
    assert "dmlviz.train" in app.exception[0].message
    assert app.title[0].value == "Noise lab"
    assert "flipped" in app.caption[0].value


def test_progress_table_shows_missing_values_as_a_dash(lab_app, tmp_path):
    """A stopped experiment whose run never logged an epoch: no training loss, speed or MAP@R."""
    spec = {"dataset": "digits", "losses": ["rll"], "noise_rates": [0.2], "seeds": [0]}
    folder = tmp_path / "stopped"
    folder.mkdir()
    (folder / EXPERIMENT_FILE).write_text(json.dumps({"spec": spec, "created": 1.0}))
    app = lab_app.run()
    assert not app.exception, [e.value for e in app.exception]
    table = app.dataframe[0]
    assert table.value[["Training loss", "Images/s", "MAP@R"]].isna().all(axis=None)
    assert table.proto.placeholder == "–"  # how the browser writes them
    assert "None" not in table.value.astype(object).to_numpy()


def test_a_busy_or_used_name_is_refused(lab_app, tmp_path):
    app = lab_app
    busy = tmp_path / "busy"
    busy.mkdir()
    lock = {"pid": os.getpid(), "pid_start": start_time(os.getpid())}
    (busy / LOCK_FILE).write_text(json.dumps(lock))
    app.text_input(key="lab_name").set_value("busy").run()
    assert f"{busy} is in use by process {os.getpid()}" in _errors(app)
    assert app.button(key="lab_start").disabled


def _run_until(app, predicate, folder):
    """Re-run the page (as the live fragment does) until ``predicate(app)`` holds; fails when the
    experiment in ``folder`` has ended without it (or after ``HANG_GUARD_S``: a hang)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        alive = experiment_state(folder)["alive"]  # asked first: a run that ends now is seen next
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        if predicate(app):
            return
        assert alive, "the experiment ended; page shows: " + _markdown(app)
        time.sleep(0.2)
    raise AssertionError("hung; page shows: " + _markdown(app))


def _markdown(app) -> str:
    return " | ".join(m.value for m in app.markdown)


@pytest.mark.slow
def test_experiment_started_watched_cancelled_resumed_and_compared(lab_app, tmp_path):
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    app = lab_app
    folder = tmp_path / "page"
    app.multiselect(key="lab_losses").set_value(["rll"])
    app.text_input(key="lab_rates").set_value("0.2")
    app.number_input(key="lab_epochs_digits").set_value(60)
    app.checkbox(key="lab_umap").uncheck()
    assert app.selectbox(key="lab_presets").value == "tuned"
    app.selectbox(key="lab_presets").set_value("paper")
    app.text_input(key="lab_name").set_value("page").run()
    assert not app.error
    try:
        app.button(key="lab_start").click().run()
        assert not app.exception, [e.value for e in app.exception]
        assert app.session_state["lab_folder"] == str(folder)
        record = json.loads((folder / EXPERIMENT_FILE).read_text())
        command = record["command"]  # the sweep reads its spec from the experiment's file
        assert command[command.index("--spec") + 1] == str(folder / EXPERIMENT_FILE)
        assert record["spec"]["presets"] == "paper"
        assert experiment_state(folder)["alive"]

        # progress: an epoch record, shown in the page's table
        _run_until(app, lambda a: any(r.get("event") == "epoch" for r in read_progress(folder)),
                   folder)  # fmt: skip
        _run_until(app, lambda a: a.dataframe and a.dataframe[0].value["Epoch"][0] != "0 / 60",
                   folder)  # fmt: skip
        table = app.dataframe[0].value
        assert table["Run"][0] == "rll-noise20-seed0" and table["Images/s"][0] > 0
        assert app.button(key="lab_cancel_all")

        app.button(key="lab_cancel_all").click().run()
        state = experiment_state(folder)
        assert state["phase"] == "cancelled" and state["runs"][0]["state"] == "cancelled"
        assert any("cancelled" in m.value for m in app.markdown)
        assert app.dataframe[0].value["State"][0] == "cancelled"
        assert "Shown when the experiment is done" not in " ".join(c.value for c in app.caption)

        app.button(key="lab_resume").click().run()
        assert experiment_state(folder)["alive"]
        _run_until(app, lambda a: experiment_state(folder)["phase"] == "finished", folder)
        app.run()
        assert any(":green-badge[finished]" in m.value for m in app.markdown)
        assert any("single seed" in m.value for m in app.markdown)  # the comparison's reading
        charts = app.get("plotly_chart")
        assert [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts] == [
            "Test MAP@R against label noise",
            "Noise-detector AUROC against label noise",
            "Flipped images memorised at the end",  # the lab's runs record replay
        ]
        assert any("In the training replay" in m.value for m in app.markdown)
        # the new run is every other page's run now (the only one in the sidebar)
        assert app.sidebar.selectbox(key="run").value == str(folder / "rll-noise20-seed0")

        # a restarted dashboard (a new session) finds the experiment and its state in the folder
        reopened = AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S).run()
        reopened.switch_page("app_pages/noise_lab.py").run()
        assert reopened.selectbox(key="lab_folder").value == str(folder)
        assert any(":green-badge[finished]" in m.value for m in reopened.markdown)
    finally:
        if experiment_state(folder)["alive"]:
            cancel_experiment(folder)
