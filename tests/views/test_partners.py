"""Which run the Query lens and the Replay page show beside the current one
(``dmlviz.views.partners``)."""

from types import SimpleNamespace

import pandas as pd

from dmlviz.runs import RunError
from dmlviz.views.partners import compatible, partners, pick_partner, runs_with


def test_pick_partner_prefers_the_other_loss_at_the_same_noise():
    primary = {"path": "a", "loss": "contextual", "noise_rate": 0.2, "seed": 0}
    candidates = [
        primary,
        {"path": "b", "loss": "contextual", "noise_rate": 0.0, "seed": 0},
        {"path": "c", "loss": "rll", "noise_rate": 0.2, "seed": 0},
        {"path": "d", "loss": "rll", "noise_rate": 0.2, "seed": 1},
    ]
    assert pick_partner(primary, candidates) == "c"
    assert pick_partner(primary, candidates[:2]) == "b"
    assert pick_partner(primary, [primary]) is None


def test_compatible():
    base = {"dataset": "digits", "protocol": "classes", "split_seed": 0}
    assert compatible(base, {**base, "loss": "rll"})
    assert not compatible(base, {**base, "split_seed": 1})


BASE = {"dataset": "digits", "protocol": "classes", "split_seed": 0}


def _runs():
    """A summary table, and a ``load`` that gives each path a config and a replay (or fails)."""
    rows = [
        {"path": "ctx-40", "loss": "contextual", "noise_rate": 0.4, "seed": 0},
        {"path": "ctx-0", "loss": "contextual", "noise_rate": 0.0, "seed": 0},
        {"path": "rll-40", "loss": "rll", "noise_rate": 0.4, "seed": 0},
        {"path": "rll-40-other-split", "loss": "rll", "noise_rate": 0.4, "seed": 0},
        {"path": "rll-40-no-replay", "loss": "rll", "noise_rate": 0.4, "seed": 0},
        {"path": "broken", "loss": "rll", "noise_rate": 0.4, "seed": 0},
    ]
    configs = {row["path"]: BASE for row in rows} | {
        "rll-40-other-split": {**BASE, "split_seed": 1}
    }

    def load(path):
        if path == "broken":
            raise RunError("broken: config.json is corrupt")
        return SimpleNamespace(config=configs[path], replay=path != "rll-40-no-replay")

    return pd.DataFrame(rows).assign(name=lambda table: table["path"]), load


def test_partners_are_the_other_loadable_runs_of_the_same_samples_that_have_what_is_shown():
    runs, load = _runs()
    current = runs.to_dict("records")[0]
    others = partners(current, runs, load, lambda run: run.replay)
    assert others.options == ["rll-40", "ctx-0", None]  # the other loss at 40 % first
    assert others.label("rll-40").startswith("rll-40 · Ranked List Loss")
    assert [r["path"] for r in runs_with(runs, load, lambda run: run.replay)] == [
        "ctx-40", "ctx-0", "rll-40", "rll-40-other-split"
    ]  # fmt: skip


def test_no_partner_leaves_only_no_comparison():
    runs, load = _runs()
    current = runs.to_dict("records")[0]
    others = partners(current, runs, load, lambda run: False)
    assert others.options == [None] and not others.rows
