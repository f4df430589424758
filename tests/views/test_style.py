"""How the dashboard writes numbers that may be unknown."""

import numpy as np
import pandas as pd

from dmlviz.views.style import percent, score


def test_unknown_scores_show_a_dash():
    # a noise-free run's replay holds None (object column) or NaN for the detector's AUROC
    row = pd.Series({"map@r": 0.61234, "detector_auroc": None})
    assert score(row["map@r"]) == "0.612"
    assert score(row["detector_auroc"]) == "-"
    assert score(np.nan) == "-" and score(np.float32(0.5), digits=1) == "0.5"
    assert percent(None) == "-" and percent(0.2) == "20 %"
