"""comparison_text: a plain-language reading generated from the numbers."""

import pandas as pd

from dmlviz.views.lab import comparison_text


def _runs(drops, seeds=(0,), jitter=0.0, rates=(0.0, 0.4)):
    rows = []
    for loss, drop in drops.items():
        for rate in rates:
            for seed in seeds:
                rows.append(
                    {
                        "name": f"{loss}-{rate}-{seed}",
                        "loss": loss,
                        "noise_kind": "symmetric",
                        "noise_rate": rate,
                        "seed": seed,
                        "state": "finished",
                        "map@r": 0.6 - drop * (rate / 0.4) + jitter * (seed % 2 * 2 - 1),
                        "recall@1": 0.9,
                        "consistency_clean": 0.8,
                        "consistency_flipped": None if rate == 0 else 0.3,
                        "detector_auroc": None if rate == 0 else 0.9,
                        "preset_source": "paper defaults",
                    }
                )
    return pd.DataFrame(rows)


def test_names_the_most_robust_loss_and_its_drop():
    text = comparison_text(_runs({"contextual": 0.05, "rll": 0.02, "multisimilarity": 0.10}))
    assert text.startswith("From 0 % to 40 % symmetric label noise, rll lost the least")
    assert "0.600 → 0.580" in text and "−0.020" in text
    assert text.index("contextual −0.050") < text.index("multisimilarity −0.100")
    assert "AUROC" in text and "0.90" in text
    assert "single seed" in text


def test_caveat_when_seeds_disagree():
    noisy = comparison_text(_runs({"contextual": 0.05, "rll": 0.04}, seeds=(0, 1), jitter=0.05))
    assert "seeds disagree" in noisy
    steady = comparison_text(_runs({"contextual": 0.05, "rll": 0.01}, seeds=(0, 1), jitter=0.001))
    assert "seeds disagree" not in steady and "single seed" not in steady


def test_reads_a_csv_and_handles_missing_results(tmp_path):
    _runs({"contextual": 0.05, "rll": 0.02}).to_csv(tmp_path / "runs.csv", index=False)
    assert "rll lost the least" in comparison_text(tmp_path)
    assert "rll lost the least" in comparison_text(tmp_path / "runs.csv")
    empty = _runs({"rll": 0.0}).assign(state="queued")
    assert comparison_text(empty).startswith("No finished runs")
    one_rate = comparison_text(_runs({"contextual": 0.0, "rll": 0.0}, rates=(0.2,)))
    assert "At 20 % symmetric noise" in one_rate
