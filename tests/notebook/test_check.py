"""The exercises' checks: None is "not answered yet", a right answer passes, a wrong one fails."""

import numpy as np
import pandas as pd
import torch

from dmlviz.losses import build
from dmlviz.notebook import check

LIST = [True, False, True, False, False, True]  # R = 3


def test_ap_at_r_by_hand(capsys):
    assert check.ap_at_r(None, LIST) is None
    assert "not answered yet" in capsys.readouterr().out
    by_hand = (1 / 1 + 2 / 3) / 3  # places 1 and 3 are correct within the first R = 3
    assert check.ap_at_r(by_hand, LIST) is True
    assert check.ap_at_r(3 / 6, LIST) is False
    assert "✗" in capsys.readouterr().out


def test_high_r1_low_map():
    assert check.high_r1_low_map(None) is None
    assert check.high_r1_low_map([True, False, False, False, True, True]) is True
    assert check.high_r1_low_map([True, True, True]) is False
    assert check.high_r1_low_map([False, True, True]) is False


def test_active_sets_and_neighbourhood():
    angles = torch.tensor([0.0, 0.3, 0.6, 2.0, 2.3, 0.45, 4.1, 4.4])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    xy = torch.stack([angles.cos(), angles.sin()], dim=1)
    r = build("rll").explain(xy, labels)
    pos = np.flatnonzero(r["positive_mask"][5]).tolist()
    neg = np.flatnonzero(r["negative_mask"][5]).tolist()
    assert check.active_sets((pos, neg), r, 5) is True
    assert check.active_sets((pos, neg[:-1]), r, 5) is False
    c = build("contextual", k=3).explain(xy, labels)
    members = np.flatnonzero(c["N"][0]).tolist()
    assert check.neighbourhood(members, c, 0) is True
    assert check.neighbourhood(members[:-1], c, 0) is False


def test_detector_checks():
    per_sample = pd.DataFrame({"flipped": [True, False, True, False, False],
                               "noise_score": [0.9, 0.1, 0.4, 0.5, 0.2],
                               "consistency_observed": [0.1, 0.9, 0.6, 0.5, 0.8]})  # fmt: skip
    assert check.detector_auroc(5 / 6, per_sample) is True
    assert check.detector_auroc(0.5, per_sample) is False
    assert check.memorised(0.5, per_sample) is True  # one of the two flipped has consistency > 0.5
    assert check.memorised(0.0, per_sample) is False
    noise, flipped = per_sample["noise_score"], per_sample["flipped"]
    assert check.precision_of_top(0.5, noise, flipped, 2) is True
    assert check.precision_of_top(1.0, noise, flipped, 2) is False
