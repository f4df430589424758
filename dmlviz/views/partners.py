"""Which run a page shows beside the current one: the Query lens ranks a query under a second run,
the Replay page plays a second run on the same slider. Both offer the same runs, chosen here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dmlviz.project.align import same_split_settings
from dmlviz.runs import Run, RunError
from dmlviz.views.runs import run_label


def compatible(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two runs' configs rank the same samples (same dataset, split protocol and seed), so
    one query index means the same image in both."""
    return same_split_settings(first, second)


def pick_partner(primary: dict[str, Any], candidates: list[dict[str, Any]]) -> str | None:
    """The run to compare with by default: among ``candidates`` (summary rows with ``path``,
    ``loss``, ``noise_rate``, ``seed``), prefer another loss at the same noise rate and seed, then
    the same loss at another noise rate, then anything; None when there is no candidate."""
    others = [c for c in candidates if c.get("path") != primary.get("path")]
    if not others:
        return None

    def score(c: dict[str, Any]) -> tuple:
        same_noise = c.get("noise_rate") == primary.get("noise_rate")
        same_seed = c.get("seed") == primary.get("seed")
        same_loss = c.get("loss") == primary.get("loss")
        return (
            not (same_noise and same_seed and not same_loss),
            not (same_loss and same_seed and not same_noise),
            not same_seed,
            str(c.get("path")),
        )

    return str(min(others, key=score)["path"])


def runs_with(
    runs: pd.DataFrame, load: Callable[[str], Run], has: Callable[[Run], bool]
) -> list[dict[str, Any]]:
    """The summary rows of ``runs`` whose run loads (``load(path)``; a broken one is left out)
    and ``has(run)``."""
    kept = []
    for row in runs.to_dict("records"):
        try:
            run = load(row["path"])
        except RunError:
            continue
        if has(run):
            kept.append(row)
    return kept


@dataclass
class Partners:
    """The runs a page can show beside the current one, as a select box offers them:
    ``options`` holds their paths, the preselected one (``pick_partner``) first and None (no
    second run) last; ``rows`` their summary rows by path."""

    options: list[str | None]
    rows: dict[str, dict[str, Any]]

    def label(self, path: str) -> str:
        """The run at ``path`` as the select box names it (``run_label``)."""
        return run_label(self.rows[path])


def partners(
    row: dict[str, Any],
    runs: pd.DataFrame,
    load: Callable[[str], Run],
    has: Callable[[Run], bool],
) -> Partners:
    """The runs of ``runs`` (the summary table) a page can show beside the run of summary row
    ``row``: every other run that loads, ranks the same samples (``compatible``) and ``has`` what
    the page shows (e.g. the split's embeddings, or replay snapshots)."""
    config = load(row["path"]).config
    others = runs[runs["path"] != row["path"]]
    candidates = runs_with(others, load, lambda run: compatible(config, run.config) and has(run))
    default = pick_partner(row, candidates)
    rest = [c["path"] for c in candidates if c["path"] != default]
    return Partners(
        options=([default] if default else []) + rest + [None],
        rows={c["path"]: c for c in candidates},
    )
