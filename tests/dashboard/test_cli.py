"""``dmlviz dashboard``: the command line, the app lookup and the safety defaults."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from shared_files import HANG_GUARD_S

from dmlviz.cli import build_parser, main
from dmlviz.cli.dashboard import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    app_path,
    check_port,
    dashboard_url,
    streamlit_command,
)


def test_defaults_are_local():
    args = build_parser().parse_args(["dashboard"])
    assert args.runs_dir == Path("runs")
    assert (args.host, args.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8501)


def test_app_is_found_beside_the_package():
    app = app_path()
    assert app.name == "app.py" and app.parent.name == "dashboard" and app.is_file()


def test_missing_app_is_a_clear_error(monkeypatch, tmp_path):
    import dmlviz

    monkeypatch.setattr(dmlviz, "__file__", str(tmp_path / "dmlviz" / "__init__.py"))
    with pytest.raises(ValueError, match="dashboard app is missing.*pip install -e"):
        app_path()


def test_streamlit_command(tmp_path):
    command = streamlit_command(tmp_path, "127.0.0.1", 8600)
    joined = " ".join(command)
    assert "-m streamlit run" in joined and str(app_path()) in command
    assert "--server.headless true" in joined and "--browser.gatherUsageStats false" in joined
    assert "--server.address 127.0.0.1" in joined and "--server.port 8600" in joined
    assert command[-3:] == ["--", "--runs", str(tmp_path.resolve())]


def test_missing_runs_folder_is_explained(tmp_path, capsys):
    code = main(["dashboard", str(tmp_path / "nope")])
    assert code == 2
    error = capsys.readouterr().err
    assert "does not exist" in error and "make demo" in error and "dmlviz train" in error


def test_busy_port_is_explained():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_port("127.0.0.1", port)
    with pytest.raises(ValueError, match="between 1 and 65535"):
        check_port("127.0.0.1", 0)


def test_url():
    assert dashboard_url("0.0.0.0", 8501) == "http://127.0.0.1:8501"
    assert dashboard_url("::1", 80) == "http://[::1]:80"


def test_sigterm_stops_the_server(runs_dir):
    """``dmlviz dashboard`` serves, answers its health check, and takes its server down on SIGTERM."""
    import signal
    import subprocess
    import sys

    from dmlviz.cli.dashboard import wait_until_up

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cli = subprocess.Popen(
        [sys.executable, "-m", "dmlviz", "dashboard", str(runs_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until_up(f"http://127.0.0.1:{port}", cli, timeout=HANG_GUARD_S)
        assert f"http://127.0.0.1:{port}" in cli.stdout.readline()
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(HANG_GUARD_S) == 0
        check_port("127.0.0.1", port)  # free again: the server went down with the command
    finally:
        if cli.poll() is None:
            cli.kill()


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGHUP"])
def test_the_server_does_not_outlive_the_command(runs_dir, signame):
    """``dmlviz dashboard`` is the server itself: killing it, even with SIGKILL, frees the port."""
    import signal
    import subprocess
    import sys

    from dmlviz.cli.dashboard import wait_until_up

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cli = subprocess.Popen(
        [sys.executable, "-m", "dmlviz", "dashboard", str(runs_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        # as from a terminal: a test run under nohup would pass its ignored SIGHUP on
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        assert wait_until_up(f"http://127.0.0.1:{port}", cli, timeout=HANG_GUARD_S)
        cli.send_signal(getattr(signal, signame))
        cli.wait(HANG_GUARD_S)
        check_port("127.0.0.1", port)  # nothing listens any more
    finally:
        if cli.poll() is None:
            cli.kill()


def test_help_names_every_page(capsys):
    """``dmlviz dashboard --help`` lists the pages the app declares (its PAGES), all of them."""
    import ast

    tree = ast.parse(app_path().read_text(encoding="utf-8"))
    pages = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES"
    )
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    missing = [title for _, _, title, _ in pages if title not in text]
    assert len(pages) == 8 and not missing, f"dashboard --help does not name {missing}"
