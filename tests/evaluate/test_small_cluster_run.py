"""A run under small-cluster noise goes through the detector, consistency and replay unchanged."""

import numpy as np

from dmlviz.evaluate import evaluate_run
from dmlviz.train import embed_run, train


def test_small_cluster_noise_is_detected_and_replayed(tmp_path):
    config = {"dataset": "digits", "loss": "contrastive", "epochs": 2, "batches_per_epoch": 3,
              "eval_every": 0, "num_threads": 1, "noise_rate": 0.3,
              "noise_kind": "small_cluster", "replay_every": 1}  # fmt: skip
    run = train(config, tmp_path / "cluster", progress=False)
    labels = run.labels()
    dissolved = np.unique(labels.clean[labels.flipped])
    assert np.array_equal(labels.flipped, np.isin(labels.clean, dissolved))
    embed_run(run, ("train", "test"))
    results = evaluate_run(run)
    summary, per_sample = run.consistency()
    assert results["consistency"] is not None and len(per_sample) == len(labels.clean)
    assert (
        summary["n_flipped"] == int(labels.flipped.sum()) and summary["detector_auroc"] is not None
    )
    assert run.replay_metrics() is not None
