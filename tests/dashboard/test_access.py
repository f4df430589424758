"""Who may use the dashboard: with a token, every session must bring it in the URL (checked in
the app before any page runs); with jobs off, the noise lab shows experiments but starts, stops
and reads nothing typed in the browser. Both set by ``dmlviz dashboard`` (tested here too)."""

from __future__ import annotations

import json
import os

import pytest

import dmlviz.cli.dashboard as dashboard
from dmlviz.cli import main
from dmlviz.views import access

TOKEN = "test-token-1234"
WELCOME = "dmlviz: see why retrieval fails"  # the first page of an empty runs folder


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    """A factory of AppTests of the dashboard on an empty runs folder, caches cleared."""
    import streamlit as st
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    return lambda: AppTest.from_file(str(APP), default_timeout=60)


def test_tokens_match_only_when_equal():
    assert access.token_matches(None, None) and access.token_matches("x", None)
    assert access.token_matches(TOKEN, TOKEN)
    assert not access.token_matches(None, TOKEN) and not access.token_matches("test", TOKEN)
    with pytest.raises(ValueError, match="argument --token: 'short' must be at least 8"):
        access.check_token("short")


def test_without_the_token_no_page_runs(fresh_app, monkeypatch):
    monkeypatch.setenv(access.TOKEN_ENV, TOKEN)
    for given in (None, "wrong-token-99"):
        app = fresh_app()
        if given is not None:
            app.query_params[access.TOKEN_PARAM] = given
        app.run()
        assert [t.value for t in app.title] == ["Token required"]
        assert access.REFUSAL in app.error[0].value and not app.sidebar.children
    app = fresh_app()
    app.query_params[access.TOKEN_PARAM] = TOKEN
    app.run()
    assert not app.exception and not app.error
    assert [t.value for t in app.title] == [WELCOME]


def _experiment(root):
    folder = root / "lab-stopped"
    folder.mkdir()
    spec = {"dataset": "digits", "losses": ["rll"], "noise_rates": [0.0], "seeds": [0]}
    (folder / "experiment.json").write_text(json.dumps({"spec": spec, "pid": None}))
    return folder


def test_a_read_only_noise_lab_shows_experiments_but_starts_nothing(fresh_app, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    _experiment(tmp_path)
    for jobs in ("on", "off"):
        monkeypatch.setenv(access.JOBS_ENV, jobs)
        app = fresh_app().run()
        app.switch_page("app_pages/noise_lab.py").run()
        assert not app.exception, [e.value for e in app.exception]
        keys = {w.key for w in [*app.text_input, *app.button] if w.key}
        infos = " ".join(i.value for i in app.info)
        if jobs == "on":
            assert {"lab_root", "lab_address", "lab_start", "lab_resume"} <= keys
            assert access.READ_ONLY not in infos
        else:
            assert not keys & {"lab_root", "lab_address", "lab_start", "lab_resume"}, keys
            assert access.READ_ONLY in infos
            assert "lab-stopped" in app.selectbox[0].value  # the experiment is still shown


@pytest.mark.parametrize(
    ("host", "options", "token", "jobs"),
    [
        ("127.0.0.1", [], None, "on"),
        ("127.0.0.1", ["--token", TOKEN], TOKEN, "on"),
        ("0.0.0.0", [], "random", "off"),
        ("0.0.0.0", ["--token", TOKEN, "--allow-jobs"], TOKEN, "on"),
    ],
)
def test_the_command_sets_a_token_and_jobs_by_the_address(tmp_path, capsys, monkeypatch, host,
                                                          options, token, jobs):  # fmt: skip
    served = []
    monkeypatch.setattr(dashboard, "check_port", lambda host, port: None)
    monkeypatch.setattr(dashboard, "serve", lambda *args: served.append(dict(os.environ)))
    monkeypatch.setenv(access.TOKEN_ENV, "left-over-token")
    monkeypatch.delenv(access.JOBS_ENV, raising=False)  # the command sets both in this process
    main(["dashboard", str(tmp_path), "--host", host, *options])
    out, err = capsys.readouterr()
    environment = served[0]
    if token is None:
        assert access.TOKEN_ENV not in environment and "?token=" not in out
    else:
        given = environment[access.TOKEN_ENV]
        assert given == token or (token == "random" and len(given) >= 24)
        assert f"/?token={given}" in out
    assert environment[access.JOBS_ENV] == jobs
    assert ("warning: listening on 0.0.0.0" in err) == (host == "0.0.0.0")


def test_a_short_token_is_refused(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path), "--token", "short"]) == 2
    assert "argument --token: 'short' must be at least 8" in capsys.readouterr().err
