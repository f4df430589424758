"""The one line `dmlviz evaluate` prints per run."""

from dmlviz.cli.evaluate import _describe


def test_the_replay_summary_is_told_as_such_not_as_a_split():
    results = {
        "test": {"map@r": 0.5, "recall@1": 0.75},
        "consistency": None,
        "replay": {"auroc_peak_epoch": 10, "memorised_end": 0.25},
    }
    line = _describe(results)
    assert line.startswith("test MAP@R 0.5000 R@1 0.7500")
    assert "replay MAP@R" not in line
    assert line.endswith("replay: detector AUROC peaked at epoch 10, memorised at the end 0.2500")


def test_a_noise_free_replay_has_no_peak_epoch():
    results = {"test": {"map@r": 0.5}, "replay": {"auroc_peak_epoch": None, "memorised_end": None}}
    line = _describe(results)
    assert line.endswith("replay: detector AUROC peaked at epoch n/a, memorised at the end n/a")
