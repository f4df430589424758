"""Who may use a dashboard, and what for: its URL token and whether it may start jobs.

``dmlviz dashboard`` passes both to the app in its environment (the token stays out of ``ps``):
``TOKEN_ENV`` holds the token every browser session must bring as ``?token=...`` (as Jupyter's
URLs do), ``JOBS_ENV`` "off" makes the pages that start processes or read paths typed in the
browser (the noise lab's form, its cancel and resume buttons) read-only. The app checks both on
the server, in ``dashboard/app.py``, before any page runs.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping

TOKEN_ENV = "DMLVIZ_DASHBOARD_TOKEN"
JOBS_ENV = "DMLVIZ_DASHBOARD_JOBS"
TOKEN_PARAM = "token"  # the URL's query parameter
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,}")  # long enough, and needs no URL quoting
REFUSAL = (
    "This dashboard needs its token: open the URL that `dmlviz dashboard` printed when it "
    "started (it ends in `?token=...`). Better still, reach it through an SSH tunnel: "
    "`ssh -L 8501:localhost:8501 HOST`, then open http://localhost:8501 (docs/remote-dashboard.md)."
)
READ_ONLY = (
    "Read-only: this dashboard listens on a network address, so it does not start or stop "
    "experiments nor read folders typed here. Start it with `--allow-jobs` to allow that, or "
    "reach it through `ssh -L` instead (docs/remote-dashboard.md); `dmlviz sweep` on the server "
    "starts the same experiments."
)


def expected_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """The token this dashboard requires, or None when it requires none."""
    return environ.get(TOKEN_ENV) or None


def token_matches(given: object, expected: str | None) -> bool:
    """Whether ``given`` (the URL's token, None when absent) is the ``expected`` one (always True
    when none is expected); compared in constant time."""
    if expected is None:
        return True
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def jobs_allowed(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the pages may start and stop experiments and read folders typed in the browser."""
    return environ.get(JOBS_ENV, "on") != "off"


def check_token(token: str) -> str:
    """``token`` when it can serve as a dashboard token, else ``ValueError`` naming ``--token``
    and what it must hold."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise ValueError(
            f"argument --token: {token!r} must be at least 8 characters of letters, digits, "
            "'.', '_', '~' or '-' (or leave --token out for a random one)"
        )
    return token
