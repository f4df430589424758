"""A small runs folder for the dashboard and views tests: four digits runs (contextual and RLL at
0 % and 40 % symmetric noise, the noisy ones with a made-up training replay) built by make_run
from pixel features instead of training, evaluated and mapped with PCA, one broken run folder,
and a tuning study of made-up trials (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from fake_runs import make_run

from dmlviz.data import load_dataset
from dmlviz.evaluate import evaluate_run
from dmlviz.project import project_replay, project_run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"

RUNS = (("contextual", 0.0), ("contextual", 0.4), ("rll", 0.0), ("rll", 0.4))


def _features(dataset, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Unit-length 'embeddings': the flattened pixels plus Gaussian noise (meaningful neighbours)."""
    pixels = dataset.images.reshape(len(dataset), -1).numpy().astype(np.float32)
    pixels = pixels - pixels.mean(0)
    features = pixels + noise * rng.standard_normal(pixels.shape).astype(np.float32)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def build_runs(root: Path) -> dict[str, Path]:
    """Write the runs below ``root``; returns ``{name: path}`` (the broken one under "broken")."""
    train = load_dataset("digits", split="train", protocol="classes")
    test = load_dataset("digits", split="test", protocol="classes")
    paths: dict[str, Path] = {}
    for loss, rate in RUNS:
        name = f"{loss}-noise{int(rate * 100)}"
        config = {
            "name": name,
            "dataset": "digits",
            "protocol": "classes",
            "split_seed": 0,
            "model": "mlp",
            "embedding_dim": 64,
            "loss": loss,
            "loss_kwargs": {},
            "preset_source": "paper defaults",
            "noise_kind": "symmetric",
            "noise_rate": rate,
            "noise_seed": 0,
            "seed": 0,
            "epochs": 3,
        }
        rng = np.random.default_rng(len(paths))
        spread = 0.3 + rate  # noisier runs embed worse
        features = {"train": (_features(train, rng, spread), train.labels),
                    "test": (_features(test, rng, spread), test.labels)}  # fmt: skip
        records = [{"epoch": epoch, "loss": 1.0 / epoch, "lr": 0.002, "seconds": 0.1}
                   for epoch in (1, 2, 3)]  # fmt: skip
        records[-1].update({"map@r": 0.5 - rate / 2, "recall@1": 0.9 - rate / 4})
        run = make_run(root / "sweep" / name, embeddings=features, flipped=(), noise_rate=rate,
                       metrics=records, status={"state": "finished", "epoch": 3, "epochs": 3},
                       replay=range(4) if rate else (), config=config)  # fmt: skip
        evaluate_run(run, k=5, top_k=12)
        project_run(run, methods=("pca",))
        if rate:
            project_replay(run, n_neighbors=5)
        paths[name] = run.path
    broken = root / "sweep" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    paths["broken"] = broken
    paths["study"] = build_study(root / "tune-digits-rll")
    return paths


def build_study(folder: Path, trials: int = 6) -> Path:
    """A ``dmlviz tune``-style folder: ``study.db`` with ``trials`` trials over lr and margin
    scored on two folds (validation MAP@R made up from the parameters; trial 2 stopped after its
    first fold), trial 0 and the best trial confirmed (the best collapsing with fresh seeds, so
    trial 0 is chosen), and its ``preset.json``."""
    import optuna

    folder.mkdir(parents=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="digits-rll",
        storage=f"sqlite:///{folder / 'study.db'}",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
    )

    def score(trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        margin = trial.suggest_float("margin", 0.1, 0.8)
        folds = [0.8 + 0.05 * math.log10(lr) + 0.01 * margin + 0.01 * f for f in (-1, 1)]
        trial.set_user_attr("fold_map@r", folds[:1])
        if trial.number == 2:  # as the median pruner stops a weak trial after its first fold
            raise optuna.TrialPruned()
        trial.set_user_attr("fold_map@r", folds)
        return sum(folds) / 2

    study.optimize(score, n_trials=trials)
    best, first = study.best_trial, study.trials[0]
    # The confirmation: the search's best collapses with fresh seeds, so trial 0 is chosen.
    confirmed = {"0": first.user_attrs["fold_map@r"], str(best.number): [0.0, 0.0]}
    study.set_user_attr("confirm_map@r", confirmed)
    preset = {"dataset": "digits", "loss": "rll", "source": "tuned on validation", "trial": 0}
    preset.update({"lr": first.params["lr"], "val_map@r": first.value})
    (folder / "preset.json").write_text(json.dumps(preset))
    return folder
