"""``dmlviz dashboard [RUNS_DIR]``: serve the Streamlit dashboard on a folder of runs.

``serve`` turns the calling process into ``streamlit run dashboard/app.py`` (``dmlviz dashboard``
and ``dmlviz demo``), so no signal can stop the command and leave the server running; ``launch``
starts the server in a child process instead (for tests and scripts that stop it themselves). The
app reads the runs folder from ``--runs`` after Streamlit's ``--``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import webbrowser
from pathlib import Path
from typing import NoReturn

import dmlviz
from dmlviz.validate import InvalidValue, is_number
from dmlviz.views import access

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501  # Streamlit's own default


def register(subparsers) -> None:
    """Add the ``dashboard`` command."""
    parser = subparsers.add_parser(
        "dashboard",
        help="explore runs in the browser (Streamlit)",
        description=(
            "Serve the dashboard on RUNS_DIR (default runs). Its pages: Runs, Noise lab, "
            "Neighbour consistency, Embedding map, Query lens, Worst queries, Replay and Loss "
            "anatomy. Listens on 127.0.0.1 only, unless --host says otherwise; on any other "
            "address every browser needs the token printed in the URL at start, and the noise lab "
            "is read-only unless --allow-jobs. To reach a dashboard on a remote machine, prefer an "
            "SSH tunnel: run it there as is and `ssh -L 8501:localhost:8501 HOST` here "
            "(docs/remote-dashboard.md)."
        ),
    )
    parser.add_argument(
        "runs_dir",
        nargs="?",
        type=Path,
        default=Path("runs"),
        metavar="RUNS_DIR",
        help="folder holding run directories, nested ones included (default runs)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--open", action="store_true", help="open a browser tab once it is up")
    parser.add_argument(
        "--token",
        help="require ?token=TOKEN in the URL of every browser session (default: a random token, "
        "printed in the URL, when --host is not loopback; none on loopback)",
    )
    parser.add_argument(
        "--allow-jobs",
        action="store_true",
        help="when --host is not loopback, let the noise lab start and cancel experiments and "
        "read dataset folders typed in the browser (read-only without it; always allowed on "
        "loopback). Safer: keep the default host and use `ssh -L 8501:localhost:8501 HOST`, "
        "see docs/remote-dashboard.md",
    )
    parser.set_defaults(func=dashboard_command)


def app_path() -> Path:
    """``dashboard/app.py`` of the source tree that holds this ``dmlviz`` package.

    The dashboard is not part of the installed package: it sits beside ``dmlviz/`` in the
    checkout, which an editable install (``pip install -e .``) keeps in place.
    """
    package = Path(dmlviz.__file__).resolve().parent
    app = package.parent / "dashboard" / "app.py"
    if not app.is_file():
        raise ValueError(
            f"the dashboard app is missing: expected {app} beside the dmlviz package at {package}. "
            "The dashboard ships with the source checkout; install dmlviz from a clone with "
            "`pip install -e .` (or `make setup`)."
        )
    return app


def streamlit_command(runs_dir: str | Path, host: str, port: int) -> list[str]:
    """The command line that serves the dashboard on ``runs_dir`` at ``host:port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
        "--theme.primaryColor",
        "#0072B2",
        "--",
        "--runs",
        str(Path(runs_dir).resolve()),
    ]


def dashboard_url(host: str, port: int, token: str | None = None) -> str:
    """The URL to open for a server listening on ``host:port`` (with ``?token=`` when given)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}"
    return url if token is None else f"{url}/?{access.TOKEN_PARAM}={token}"


def server_environment(token: str | None = None, allow_jobs: bool = True) -> dict[str, str]:
    """This process's environment with what the app reads of its access rules
    (``dmlviz.views.access``): the token every browser must bring (None: none), and whether the
    noise lab may start jobs."""
    environment = {k: v for k, v in os.environ.items() if k != access.TOKEN_ENV}
    if token is not None:
        environment[access.TOKEN_ENV] = access.check_token(token)
    environment[access.JOBS_ENV] = "on" if allow_jobs else "off"
    return environment


def launch(
    runs_dir: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    token: str | None = None,
    allow_jobs: bool = True,
) -> subprocess.Popen:
    """Start the dashboard server on ``runs_dir`` and return its process (stop it with
    ``terminate()``). With ``open_browser`` a browser tab opens once the server answers;
    ``token`` and ``allow_jobs``: see ``server_environment``.

    Raises ``ValueError`` when the port is taken, the token unfit or the app missing.
    """
    check_port(host, port)
    environment = server_environment(token, allow_jobs)
    process = subprocess.Popen(streamlit_command(runs_dir, host, port), env=environment)
    if open_browser:
        url = dashboard_url(host, port, token)
        threading.Thread(target=open_when_up, args=(url, process), daemon=True).start()
    return process


def serve(runs_dir: str | Path, host: str, port: int, open_browser: bool = False) -> NoReturn:
    """Become the dashboard server on ``runs_dir``: this process is replaced by Streamlit
    (``os.execv``), so stopping it in any way (Ctrl-C, ``kill``, SIGKILL, a closed terminal)
    stops the server. It keeps this process's environment, and with it the access rules
    ``start`` put there. With ``open_browser`` a helper process opens a tab once the server
    answers.

    Raises ``ValueError`` when the port is taken or the app is missing; never returns otherwise.
    """
    check_port(host, port)
    command = streamlit_command(runs_dir, host, port)
    if open_browser:
        opener = (
            "import sys; from dmlviz.cli.dashboard import open_when_up; open_when_up(sys.argv[1])"
        )
        url = dashboard_url(host, port, access.expected_token())
        subprocess.Popen([sys.executable, "-c", opener, url])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def open_when_up(url: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Open ``url`` (its token included) in a browser tab once the dashboard there answers (give
    up when ``process`` exits or after ``timeout`` s)."""
    parts = urllib.parse.urlsplit(url)
    if wait_until_up(f"{parts.scheme}://{parts.netloc}", process, timeout=timeout):
        webbrowser.open(url)


def check_port(host: str, port: int) -> None:
    """Raise ``ValueError`` naming the port when ``host:port`` cannot be bound (e.g. in use)."""
    if not is_number(port, 1, 65535, integer=True):
        raise InvalidValue("--port", port, "must be between 1 and 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(
                f"cannot listen on {host}:{port} ({error.strerror or error}); is another dashboard "
                "running? Choose another --port"
            ) from None


def wait_until_up(url: str, process: subprocess.Popen | None = None, timeout: float = 30.0) -> bool:
    """Poll ``url``'s health endpoint until it answers ``ok`` (True), the process exits or
    ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def dashboard_command(args: argparse.Namespace) -> NoReturn:
    """Serve the dashboard on ``args.runs_dir`` until Ctrl-C: the process becomes the server."""
    runs_dir: Path = args.runs_dir
    if not runs_dir.is_dir():
        raise ValueError(
            f"runs folder {runs_dir} does not exist. Train some runs first, e.g. `make demo` or "
            f"`dmlviz train --dataset digits --loss contextual --out {runs_dir}/ctx`, or pass the "
            "folder that holds your runs: `dmlviz dashboard PATH`"
        )
    return start(runs_dir, args.host, args.port, args.open, args.token, args.allow_jobs)


def start(
    runs_dir: Path,
    host: str,
    port: int,
    open_browser: bool = False,
    token: str | None = None,
    allow_jobs: bool = False,
) -> NoReturn:
    """Print the dashboard's URL and become its server (``serve``). On a host other than
    loopback a browser needs ``token`` (a random one when None) and the noise lab is read-only
    unless ``allow_jobs``; on loopback only a given ``token`` is required and jobs are allowed."""
    exposed = not _is_loopback(host)
    if token is None and exposed:
        token = secrets.token_urlsafe(24)
    if token is not None:
        access.check_token(token)
    allow_jobs = allow_jobs or not exposed
    check_port(host, port)
    if exposed:
        jobs = ("the noise lab starts jobs and reads folders typed in the browser" if allow_jobs
                else "the noise lab is read-only (--allow-jobs to start experiments)")  # fmt: skip
        print(
            f"warning: listening on {host}: anyone who has the URL below (its token) can see "
            f"every run, and {jobs}; an SSH tunnel is safer (docs/remote-dashboard.md)",
            file=sys.stderr,
        )
    url = dashboard_url(host, port, token)
    print(f"dmlviz dashboard on {runs_dir.resolve()}: {url}  (Ctrl-C to stop)", flush=True)
    environment = server_environment(token, allow_jobs)
    os.environ.pop(access.TOKEN_ENV, None)  # the server inherits exactly these rules
    os.environ.update(environment)
    serve(runs_dir, host, port, open_browser)
