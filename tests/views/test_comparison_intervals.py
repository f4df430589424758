"""The noise lab's comparison text and the lens say when a difference is within noise."""

from __future__ import annotations

import pandas as pd
from fake_runs import per_query_table, save_per_query

from dmlviz.views.lab import comparison_text
from dmlviz.views.lens import difference_text

CONFIG = {"dataset": "digits", "model": "mlp", "loss": "rll"}


def test_comparison_text_gives_each_pair_its_interval_at_the_highest_rate(tmp_path, make_run):
    rows = []
    for loss, shift_at_40 in (("rll", 0.0), ("contextual", 0.15)):
        for rate, shift in ((0.0, 0.0), (0.4, shift_at_40)):
            for seed in (0, 1):
                run = make_run(tmp_path / f"{loss}-{rate}-{seed}", splits=(), config=CONFIG)
                table = per_query_table(shift, seed=100 * seed + len(rows))
                save_per_query(run, table)
                rows.append({"loss": loss, "noise_kind": "symmetric", "noise_rate": rate,
                             "seed": seed, "state": "finished", "map@r": table["ap@r"].mean(),
                             "preset_source": "paper defaults", "path": str(run.path)})  # fmt: skip
    text = comparison_text(pd.DataFrame(rows))
    assert "At 40 % symmetric noise, MAP@R contextual - rll: +0.1" in text
    assert "(contextual is better: the interval excludes 0), over 2 and 2 seeds" in text
    assert "At 0 % noise" not in text


def test_lens_difference_says_within_noise_or_better():
    same = difference_text(per_query_table(seed=1), per_query_table(seed=2), ("left", "right"))
    assert "within noise" in same and same.startswith("Over the whole split")
    better = difference_text(per_query_table(seed=1), per_query_table(0.2, 2), ("left", "right"))
    assert "right is better" in better
    other = difference_text(per_query_table(), per_query_table(classes=10), ("left", "right"))
    assert other.startswith("The two runs cannot be compared over the whole split")
