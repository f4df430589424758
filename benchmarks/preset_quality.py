"""Tuned presets against the paper defaults: validation and test MAP@R of every loss, clean and noisy.

For digits (MLP, the ``samples`` protocol) and Omniglot (small convnet trained from scratch,
characters split in half, from ``images_background_small1.zip`` of the official Omniglot repository:
136 characters) and each loss: the paper defaults and the shipped preset
(``dmlviz/presets/<dataset>.json``, found by ``dmlviz tune``), each at 0 % and 40 % symmetric label
noise (``dmlviz.experiments.compare.compare_presets``):

* ``val_map@r``: mean MAP@R over the validation folds of the train split that the search used
  (class-disjoint for Omniglot, folds of each digit's train images for digits), retrained with
  fresh seeds (so it is not the search's own, selected, score);
* ``test_map@r``: trained on the whole train split with seeds 0, 1 and 2, scored on the test split
  (never seen by the search), mean and standard deviation over the seeds.

A loss is only fairly compared with another when both ran with settings tuned alike; this table
shows how much each one gained from tuning, and whether the gain on validation carries to test.
Training runs are kept in ``runs/preset-quality/`` so an interrupted measurement resumes; the full
run takes about an hour on 2 CPU cores, nearly all of it Omniglot. ``--quick`` trains RLL on digits
for one epoch and says nothing about quality.
"""

from __future__ import annotations

import time
from pathlib import Path

from _common import machine_info, parse_args, write_result

from dmlviz.experiments.compare import compare_presets
from dmlviz.experiments.tune import SEARCH_SPACES

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot" / "images_background_small1.zip"
RUNS = REPO / "runs" / "preset-quality"


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    started = time.perf_counter()
    if args.quick:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dmlviz-presets-") as tmp:
            rows = compare_presets(
                "digits", ["rll"], tmp, noise_rates=(0.4,), seeds=(0, 1), epochs=1, log=None
            )
    else:
        rows = []
        sets = [("digits", None)]
        if OMNIGLOT.exists():
            sets.append(("omniglot", str(OMNIGLOT)))
        for dataset, root in sets:
            rows += compare_presets(
                dataset, list(SEARCH_SPACES), RUNS / dataset, root=root, jobs=2, log=print
            )
    write_result(
        "preset_quality",
        {
            "description": __doc__.split("\n\n")[1].replace("\n", " "),
            "machine": machine_info(),
            "seconds": round(time.perf_counter() - started, 1),
            "comparison": [_with_series(row) for row in rows],
            "charts": {
                "comparison": {"x": "noise_rate", "y": "test_map@r", "color": "loss_preset"}
            },
            "notes": (
                "val_map@r: mean over the folds the search used (fresh seeds); test_map@r: mean "
                "of 3 seeds on the test split, test_map@r_std their standard deviation. source "
                "'paper defaults' on a 'tuned' row: no search ran for that loss and dataset."
            ),
        },
    )


def _with_series(row: dict) -> dict:
    """The row with the name of its line in the chart (the table leaves out its list values)."""
    return {**row, "loss_preset": f"{row['dataset']} {row['loss']} {row['preset']}"}


if __name__ == "__main__":
    main()
