"""The checks of the notebooks' exercises: each takes the student's answer, says in one line
whether it is right (with a hint when not), and returns True, False, or None while the answer is
still ``None``. The right answers come from the library itself (``dmlviz.evaluate``, a loss's
``explain()``), so a check also shows that the hand computation and the library agree."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NOT_YET = "not answered yet: fill in the cell above and run it again"


def _say(right: bool, hint: str) -> bool:
    print("✓ right" if right else f"✗ not yet: {hint}")
    return right


def _ranked_list_metrics(relevant: Sequence[bool]) -> dict[str, float]:
    """``dmlviz.evaluate.retrieval_metrics`` of one query whose ranked list is ``relevant``
    (True = same class), every relevant item in the list: unit vectors at growing angles make
    cosine similarity rank them in the given order."""
    from dmlviz.evaluate import retrieval_metrics

    relevant = np.asarray(relevant, dtype=bool)
    angles = np.linspace(0.1, 1.5, len(relevant))
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels = np.where(relevant, 0, 1)
    result = retrieval_metrics(np.array([[1.0, 0.0]], np.float32), np.array([0]), gallery, labels,
                               ks=(1,), clustering=False)  # fmt: skip
    return result.metrics


def ap_at_r(answer: float | None, relevant: Sequence[bool]) -> bool | None:
    """Exercise: the AP@R of a query whose ranked list is ``relevant`` (R = its number of
    True)."""
    if answer is None:
        print(NOT_YET)
        return None
    truth = _ranked_list_metrics(relevant)["map@r"]
    return _say(
        abs(float(answer) - truth) < 5e-3,
        f"{answer} is not it. Only the first R places count: add P(i) at each correct place i "
        "and divide by R (not by the number of correct places).",
    )


def high_r1_low_map(relevant: Sequence[bool] | None, below: float = 0.5) -> bool | None:
    """Exercise: a ranked list (True = same class) with R@1 = 1 and AP@R below ``below``."""
    if relevant is None:
        print(NOT_YET)
        return None
    relevant = np.asarray(relevant, dtype=bool)
    if relevant.sum() < 2:
        return _say(False, "give the query at least two images of its class (R >= 2)")
    metrics = _ranked_list_metrics(relevant)
    print(f"R@1 = {metrics['recall@1']:.0f}, AP@R = {metrics['map@r']:.3f}")
    return _say(
        metrics["recall@1"] == 1 and metrics["map@r"] < below,
        "R@1 needs a correct first place; AP@R falls when the other correct ones come after "
        "place R.",
    )


def active_sets(
    answer: tuple[Sequence[int], Sequence[int]] | None, explained: dict, query: int
) -> bool | None:
    """Exercise: RLL's (positive, negative) active sets of ``query``, as sample indices, against
    ``explained`` (``rll.explain(...)``)."""
    if answer is None:
        print(NOT_YET)
        return None
    positives, negatives = (set(int(i) for i in part) for part in answer)
    true_pos = set(np.flatnonzero(np.asarray(explained["positive_mask"])[query]).tolist())
    true_neg = set(np.flatnonzero(np.asarray(explained["negative_mask"])[query]).tolist())
    hint = []
    if positives != true_pos:
        hint.append(f"positives: same class and farther than alpha - m ({len(true_pos)} of them)")
    if negatives != true_neg:
        hint.append(f"negatives: other class and closer than alpha ({len(true_neg)} of them)")
    return _say(not hint, "; ".join(hint))


def neighbourhood(answer: Sequence[int] | None, explained: dict, point: int) -> bool | None:
    """Exercise: the contextual loss's neighbour set N(point), against ``explained``
    (``contextual.explain(...)``)."""
    if answer is None:
        print(NOT_YET)
        return None
    truth = set(np.flatnonzero(np.asarray(explained["N"])[point] > 0).tolist())
    return _say(
        {int(i) for i in answer} == truth,
        f"N({point}) has {len(truth)} members: the point itself, its k - 1 nearest, and any "
        "within eps of the k-th (in squared distance)",
    )


def detector_auroc(answer: float | None, per_sample) -> bool | None:
    """Exercise: the AUROC of ``noise_score`` as a detector of ``flipped`` in ``per_sample``
    (a run's consistency table), computed by hand."""
    from sklearn.metrics import roc_auc_score

    if answer is None:
        print(NOT_YET)
        return None
    truth = roc_auc_score(per_sample["flipped"], per_sample["noise_score"])
    return _say(
        abs(float(answer) - truth) < 5e-3,
        "the share of (flipped, kept) pairs in which the flipped one scores higher, ties "
        "counting one half",
    )


def memorised(answer: float | None, per_sample) -> bool | None:
    """Exercise: the memorised share of ``per_sample`` (a consistency table with ``flipped``):
    flipped images whose neighbours mostly (more than half) carry their wrong label."""
    if answer is None:
        print(NOT_YET)
        return None
    flipped = per_sample["flipped"].to_numpy(dtype=bool)
    truth = float((per_sample["consistency_observed"].to_numpy()[flipped] > 0.5).mean())
    return _say(abs(float(answer) - truth) < 5e-3,
                "among the flipped images only, the share with consistency above 0.5")  # fmt: skip


def precision_of_top(answer: float | None, noise_score, flipped, count: int) -> bool | None:
    """Exercise: the share of truly flipped labels among the ``count`` most suspicious ones
    (``dmlviz.evaluate.top_precision``: tied scores at the cut count by their expected share)."""
    from dmlviz.evaluate import top_precision

    if answer is None:
        print(NOT_YET)
        return None
    truth = top_precision(np.asarray(noise_score), np.asarray(flipped, dtype=bool), count)
    return _say(abs(float(answer) - truth) < 0.02,
                f"sort by noise_score, keep the top {count}, and count the flipped ones")  # fmt: skip
