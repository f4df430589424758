"""The paired class bootstrap (dmlviz.evaluate.paired) on per-query tables whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from fake_runs import per_query_table

from dmlviz.evaluate.paired import (
    PAIRED_METRICS,
    SplitMismatch,
    bootstrap_differences,
    class_sums,
    compare_tables,
    seed_difference,
)


def per_query(shift: float = 0.0, seed: int = 0, classes: int = 40, per_class: int = 8):
    """``per_query_table`` with 40 classes of 8 queries."""
    return per_query_table(shift, seed, classes, per_class)


def test_identical_runs_differ_by_zero_within_noise():
    table = per_query()
    comparison = compare_tables(table, table.copy())
    assert [d.metric for d in comparison.differences] == list(PAIRED_METRICS)
    for difference in comparison.differences:
        assert difference.difference == 0.0
        assert difference.within_noise
        assert "within noise" in difference.text()


def test_runs_of_different_seeds_are_within_noise():
    difference = compare_tables(per_query(seed=1), per_query(seed=2)).differences[0]
    assert difference.low < 0 < difference.high


def test_a_clear_shift_excludes_zero_and_names_the_better_run():
    comparison = compare_tables(per_query(seed=1), per_query(0.05, seed=2), names=("old", "new"))
    difference = comparison.differences[0]
    assert difference.metric == "map@r" == comparison.explained
    assert 0 < difference.low < 0.05 < difference.high
    assert not difference.within_noise
    assert "new is better" in difference.text("old", "new")


def test_the_difference_is_the_difference_of_the_means_and_the_classes_add_up_to_it():
    a, b = per_query(seed=1), per_query(0.03, seed=2)
    comparison = compare_tables(a, b)
    difference = comparison.differences[0]
    assert difference.a == pytest.approx(a["ap@r"].mean())
    assert difference.difference == pytest.approx(b["ap@r"].mean() - a["ap@r"].mean())
    contributions = (b["ap@r"] - a["ap@r"]).groupby(a["label"]).sum() / len(a)
    top = contributions.abs().sort_values(ascending=False).index[:5]
    assert list(comparison.classes["label"]) == list(top)
    assert comparison.classes["contribution"].to_numpy() == pytest.approx(contributions[top])
    assert len(comparison.queries) == 5


def test_lone_queries_are_left_out():
    a, b = per_query(seed=1), per_query(seed=2)
    a.loc[0, "r"] = b.loc[0, "r"] = 0
    b.loc[0, "ap@r"] = a.loc[0, "ap@r"] + 1.0
    difference = compare_tables(a, b).differences[0]
    scored = a["r"] > 0
    assert difference.difference == pytest.approx((b["ap@r"] - a["ap@r"])[scored].mean())


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda t: t.iloc[:-1], "has 320 test queries"),
        (lambda t: t.assign(label=t["label"][::-1].to_numpy()), "labels differ"),
        (lambda t: t.assign(r=t["r"] + 1), "references differ"),
    ],
)
def test_other_test_queries_are_refused_with_what_differs(change, said):
    with pytest.raises(SplitMismatch, match=said) as error:
        compare_tables(per_query(), change(per_query()))
    assert "same test split" in str(error.value)


def test_the_resampled_means_match_a_slow_bootstrap():
    """One resample at a time, classes drawn with the same generator, gives the same draws."""
    a, b = per_query(seed=1, classes=6), per_query(0.02, seed=2, classes=6)
    _, n, S_a = class_sums(a, ["ap@r"])
    _, _, S_b = class_sums(b, ["ap@r"])
    fast = bootstrap_differences(S_a[None], S_b[None], n, resamples=50, seed=3)[:, 0]
    rng = np.random.default_rng(3)
    for draw in fast:
        counts = rng.multinomial(6, np.full(6, 1 / 6))
        rng.multinomial(1, [1.0]), rng.multinomial(1, [1.0])  # the seed draws (one seed a side)
        picked = np.repeat(np.arange(6), counts)
        mean_a = a[a["label"].isin(picked)].groupby("label")["ap@r"].sum()
        mean_b = b[b["label"].isin(picked)].groupby("label")["ap@r"].sum()
        queries = (counts * n).sum()
        expected = ((mean_b - mean_a).reindex(range(6), fill_value=0) * counts).sum() / queries
        assert draw == pytest.approx(expected)


def test_seeds_resampled_too_widen_the_interval():
    """Seed-to-seed spread the class bootstrap alone cannot see widens the hierarchical interval."""
    a = [per_query(shift, seed) for shift, seed in ((-0.03, 1), (0.0, 2), (0.03, 3))]
    b = [per_query(shift, seed) for shift, seed in ((-0.03, 11), (0.0, 12), (0.03, 13))]
    both = seed_difference(a, b, ("map@r",))[0]
    one = seed_difference(a[:1], b[:1], ("map@r",))[0]
    assert both.within_noise
    assert both.high - both.low > 1.5 * (one.high - one.low)
    assert both.a == pytest.approx(np.mean([t["ap@r"].mean() for t in a]))


def test_hierarchical_detects_a_shift_larger_than_the_seed_spread():
    a = [per_query(0.0, seed) for seed in (1, 2, 3)]
    b = [per_query(0.06, seed) for seed in (11, 12, 13)]
    difference = seed_difference(a, b, ("map@r",))[0]
    assert difference.low > 0
    assert difference.difference == pytest.approx(0.06, abs=0.01)


def test_seed_difference_refuses_runs_of_another_split():
    with pytest.raises(SplitMismatch):
        seed_difference([per_query()], [per_query(), per_query(classes=20)])


def test_the_refusal_names_the_first_differing_query_in_plain_values():
    other = per_query()
    other.loc[9, "label"] = 99
    with pytest.raises(SplitMismatch, match=r"labels differ \(first at row 9: 1 in A, 99 in B\)"):
        compare_tables(per_query(), other)
