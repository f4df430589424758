"""The sweep spec: what a sweep trains, its checks, and the training config of each run.

A sweep trains every (loss, noise rate, train fraction, seed) combination on the same splits and
the same noisy labels: for a given (rate, fraction, seed) every loss trains on identical images
and noisy labels (the noise seed and the seed that draws the kept train images are the run's
seed, the split seed is fixed). Each loss takes its hyperparameters from the per-dataset preset
table (``dmlviz.presets``). Runs are named ``<loss>-noise<rate%>-seed<s>``, with
``-train<fraction%>`` before the seed when they withhold train data (``run_name``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dmlviz.experiments.folder import SPEC_FILE
from dmlviz.experiments.ray_executor import RAY_MISSING, ray_installed
from dmlviz.registry import LOSSES
from dmlviz.registry.datasets import DATASETS, PROTOCOLS
from dmlviz.registry.settings import NOISE_KINDS, run_name
from dmlviz.validate import is_number, number_range, problem

# Settings that must stay the same when a sweep folder is reused.
FIXED_SETTINGS = (
    "dataset",
    "protocol",
    "noise_kind",
    "split_seed",
    "dataset_root",
    "test_root",
    "epochs",
    "presets",
)
# The demo: a small digits sweep; --quick is a smoke run of one loss, one rate, one epoch.
# Its time is promised here only (the README, ``dmlviz demo``, the dashboard's getting-started
# text and benchmarks/demo_time.py, which measures it, all read these two).
DEMO_LIMIT_S = 180.0
DEMO_TIME = "under 3 minutes on a 2-core CPU"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEMO_LOSSES = ["contextual", "rll", "multisimilarity"]
DEMO_NOISE_RATES = [0.0, 0.2, 0.4]
DEMO_PROTOCOL = "samples"
# Where runs train: "local", the process pool of this machine (``--jobs``), or "ray", one Ray task
# per run on a local Ray or a cluster (``dmlviz.experiments.ray_executor``).
EXECUTORS = ("local", "ray")


@dataclass
class SweepSpec:
    """What a sweep trains: every combination of ``losses`` x ``noise_rates`` x ``seeds``.

    ``epochs`` None keeps each dataset's default; ``jobs`` is the number of runs trained in
    parallel processes; ``umap`` adds UMAP maps to the PCA ones; ``test_root`` trains on every
    class of ``dataset_root`` and tests on the classes of this second tree (folder, omniglot);
    ``protocol`` None is the dataset's default class split (see ``dmlviz.data.load_dataset``); ``presets`` "tuned" trains
    each loss with its preset tuned on validation where one ships (else its paper defaults),
    "paper" with its paper defaults (``dmlviz.presets``). ``train_fractions``: the shares of each
    train class's images the runs keep (1: all; ``dmlviz.data.load_dataset``). ``executor`` "ray"
    trains each run as a
    Ray task on the cluster at ``address`` (None: ``$RAY_ADDRESS`` or a local Ray; ``jobs`` is then
    unused: Ray runs as many at once as the cluster's resources allow).
    """

    dataset: str
    losses: list[str]
    noise_rates: list[float]
    seeds: list[int] = field(default_factory=lambda: [0])
    noise_kind: str = "symmetric"
    epochs: int | None = None
    jobs: int = 1
    umap: bool = True
    dataset_root: str | None = None
    test_root: str | None = None
    protocol: str | None = None
    split_seed: int = 0
    presets: str = "tuned"
    executor: str = "local"
    address: str | None = None
    train_fractions: list[float] = field(default_factory=lambda: [1.0])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """Build a spec from a plain dict (such as ``sweep.json``), ignoring unknown keys."""
        known = {name for name in cls.__dataclass_fields__}
        spec = cls(**{key: value for key, value in data.items() if key in known})
        spec.losses = list(spec.losses)
        spec.noise_rates = list(spec.noise_rates)
        spec.seeds = list(spec.seeds)
        spec.train_fractions = list(spec.train_fractions)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict."""
        return asdict(self)

    def combinations(self) -> list[tuple[str, float, int, float]]:
        """Every ``(loss, noise rate, seed, train fraction)``, in training order."""
        return combinations(self.losses, self.noise_rates, self.seeds, self.train_fractions)

    def run_names(self) -> list[str]:
        """Every run's name, in training order."""
        return [run_name(loss, rate, seed, train_fraction=fraction)
                for loss, rate, seed, fraction in self.combinations()]  # fmt: skip


def combinations(
    losses: Sequence[str],
    noise_rates: Sequence[float],
    seeds: Sequence[int],
    train_fractions: Sequence[float] = (1.0,),
) -> list[tuple[str, float, int, float]]:
    """Every ``(loss, noise rate, seed, train fraction)`` of a sweep, in training order (seed,
    then fraction, then rate, then loss): the one place that orders a sweep's runs."""
    return [(loss, float(rate), int(seed), float(fraction)) for seed in seeds
            for fraction in train_fractions for rate in noise_rates
            for loss in losses]  # fmt: skip


def demo_spec(quick: bool = False) -> SweepSpec:
    """The demo's sweep: digits, contextual / RLL / multi-similarity at 0, 20 and 40 % symmetric
    noise, one seed; ``quick``: contextual at 20 % for one epoch, PCA maps only.

    It uses digits' ``samples`` protocol (all ten digits in train and test, half the images
    each), stated explicitly: under the class-disjoint ``classes`` protocol only five classes
    train, the MLP overfits them within a few epochs and label noise acts as a regulariser
    (test MAP@R rises with noise), which hides the effect the demo is about.
    """
    if quick:
        return SweepSpec(
            "digits", ["contextual"], [0.2], [0], epochs=1, umap=False, protocol=DEMO_PROTOCOL
        )
    return SweepSpec(
        "digits",
        list(DEMO_LOSSES),
        list(DEMO_NOISE_RATES),
        [0],
        protocol=DEMO_PROTOCOL,  # epochs: the dataset's, which its presets were tuned for
    )


def spec_problems(spec: SweepSpec) -> list[str]:
    """Every problem with ``spec`` as a readable message (empty when it is valid)."""
    from dmlviz.presets import KINDS

    problems = []

    def bad(name: str, value: object, allowed: str) -> None:
        problems.append(problem(name, value, allowed))

    if spec.dataset not in DATASETS:
        bad("dataset", spec.dataset, f"choose one of {', '.join(DATASETS)}")
    if not spec.losses:
        bad("losses", spec.losses, "name at least one loss")
    for loss in spec.losses:
        if loss not in LOSSES:
            bad("loss", loss, f"choose one of {', '.join(LOSSES)}")
    if len(set(spec.losses)) != len(spec.losses):
        bad("losses", spec.losses, "name each loss once")
    if not spec.noise_rates:
        bad("noise_rates", spec.noise_rates, "give at least one, e.g. 0")
    for rate in spec.noise_rates:
        if not is_number(rate, 0, 1, high_open=True):
            bad(
                "noise_rate",
                rate,
                f"must be {number_range(0, 1, high_open=True)} (0.2: 20 % of labels)",
            )
    if len(set(spec.noise_rates)) != len(spec.noise_rates):
        bad("noise_rates", spec.noise_rates, "give each rate once")
    if not spec.seeds:
        bad("seeds", spec.seeds, "give at least one, e.g. 0")
    for seed in spec.seeds:
        if not is_number(seed, 0, integer=True):
            bad("seed", seed, f"must be {number_range(0, None, integer=True)}")
    if len(set(spec.seeds)) != len(spec.seeds):
        bad("seeds", spec.seeds, "give each seed once")
    if not spec.train_fractions:
        bad("train_fractions", spec.train_fractions, "give at least one, e.g. 1")
    for fraction in spec.train_fractions:
        if not is_number(fraction, 0, 1, low_open=True):
            allowed = number_range(0, 1, low_open=True)
            bad("train_fraction", fraction, f"must be {allowed} (0.5: half of each class's images)")
    if len(set(spec.train_fractions)) != len(spec.train_fractions):
        bad("train_fractions", spec.train_fractions, "give each fraction once")
    if spec.noise_kind not in NOISE_KINDS:
        bad("noise_kind", spec.noise_kind, f"choose one of {', '.join(NOISE_KINDS)}")
    if spec.epochs is not None and not is_number(spec.epochs, 1, integer=True):
        bad("epochs", spec.epochs, f"must be {number_range(1, None, integer=True)}")
    if not is_number(spec.jobs, 1, integer=True):
        bad("jobs", spec.jobs, f"must be {number_range(1, None, integer=True)}")
    allowed = PROTOCOLS.get(spec.dataset, ())
    if spec.protocol is not None and allowed and spec.protocol not in allowed:
        bad("protocol", spec.protocol, f"choose one of {', '.join(allowed)} for {spec.dataset}")
    if spec.presets not in KINDS:
        bad("presets", spec.presets, f"choose one of {', '.join(KINDS)}")
    for key in ("dataset_root", "test_root"):
        root = getattr(spec, key)
        if root is not None and not Path(root).exists():
            bad(key, str(root), "does not exist")
    return problems + executor_problems(spec.executor, spec.address)


def executor_problems(executor: object, address: object = None) -> list[str]:
    """Every problem with an executor choice (``EXECUTORS``) and its Ray ``address`` (empty when
    they can run): the one check for sweeps, tuning and the noise lab."""
    if executor not in EXECUTORS:
        return [problem("executor", executor, f"choose one of {', '.join(EXECUTORS)}")]
    problems = []
    if address is not None and (not isinstance(address, str) or not address.strip()):
        problems.append(problem("address", address, "give the head node as HOST:6379, or none"))
    elif address is not None and executor != "ray":
        problems.append(problem("address", address, "a Ray address needs executor ray"))
    if executor == "ray" and not ray_installed():
        problems.append(RAY_MISSING)
    return problems


def validate_spec(spec: SweepSpec) -> SweepSpec:
    """Return ``spec`` when valid, else raise ``ValueError`` listing every problem."""
    problems = spec_problems(spec)
    if problems:
        raise ValueError("; ".join(problems))
    return spec


def read_spec_file(path: str | Path) -> SweepSpec:
    """The ``SweepSpec`` in a JSON file: a spec's fields (``sweep.json``), or a noise-lab
    ``experiment.json`` whose ``spec`` key holds them. ``ValueError`` naming the file when it is
    missing, unreadable or not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(
            f"the sweep spec {path} does not exist: give the path of a sweep.json or a noise-lab "
            "experiment.json"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the sweep spec {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"the sweep spec {path} is not valid JSON ({error}): fix it") from None
    if isinstance(data, dict) and isinstance(data.get("spec"), dict):
        data = data["spec"]
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a sweep spec (a JSON object)")
    return SweepSpec.from_dict(data)


def experiment_problems(spec: dict[str, Any]) -> list[str]:
    """Every problem with a noise-lab experiment ``spec`` (a ``SweepSpec``'s fields as a dict plus
    ``name``, the experiment folder's name) as a message to show next to the form; empty when
    valid. Required keys: dataset, losses, noise_rates."""
    if not isinstance(spec, dict):
        return [f"an experiment spec must be a dict, not {type(spec).__name__}"]
    missing = [key for key in ("dataset", "losses", "noise_rates") if key not in spec]
    if missing:
        return [f"the spec lacks {', '.join(missing)}"]
    unknown = sorted(set(spec) - set(SweepSpec.__dataclass_fields__) - {"name"})
    problems = [problem(key, spec[key], "unknown setting") for key in unknown]
    for key in ("losses", "noise_rates", "seeds", "train_fractions"):
        if key in spec and not isinstance(spec[key], (list, tuple)):
            problems.append(problem(key, spec[key], "must be a list"))
    if problems:
        return problems
    problems += spec_problems(SweepSpec.from_dict(spec))
    name = spec.get("name")
    if name is not None and not is_name(name):
        problems.append(
            problem(
                "name",
                name,
                "may hold only letters, digits, '.', '_' and '-', and must start with a letter "
                "or digit",
            )
        )
    return problems


def is_name(name: object) -> bool:
    """Whether ``name`` can name an experiment or run folder (letters, digits, '.', '_', '-')."""
    return isinstance(name, str) and bool(_NAME.match(name))


def plan(spec: SweepSpec) -> list[dict[str, Any]]:
    """The training config of every run of ``spec``, in training order."""
    from dmlviz.train import default_config

    configs = []
    for loss, rate, seed, fraction in spec.combinations():
        config = default_config(spec.dataset, loss, presets=spec.presets)
        config.update(
            name=run_name(loss, rate, seed, train_fraction=fraction),
            noise_rate=rate,
            train_fraction=fraction,
            noise_kind=spec.noise_kind,
            noise_seed=seed,
            seed=seed,
            split_seed=spec.split_seed,
        )
        if spec.epochs is not None:
            config["epochs"] = spec.epochs
        for key in ("dataset_root", "test_root"):
            if getattr(spec, key) is not None:
                config[key] = str(getattr(spec, key))
        if spec.protocol is not None:
            config["protocol"] = spec.protocol
        configs.append(config)
    return configs


def check_folder(spec: SweepSpec, out: str | Path) -> None:
    """Refuse to mix two different experiments in one folder: ``ValueError`` when ``out`` holds a
    sweep whose fixed settings differ from ``spec``'s."""
    out = Path(out)
    path = out / SPEC_FILE
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    new = spec.to_dict()
    for key in FIXED_SETTINGS:
        if key not in old and key in ("presets", "test_root"):
            continue  # written before the choice existed
        if old.get(key) != new.get(key):
            raise ValueError(
                f"{out} holds a sweep with {key}={old.get(key)!r}, not {new.get(key)!r}; "
                "choose another --out"
            )


def outdated(out: str | Path, spec: SweepSpec) -> list[str]:
    """Why the runs in ``out`` are not the ones ``spec`` would train now (empty when they are, or
    when ``out`` holds none): a fixed setting of its ``sweep.json`` differs, or a run's loss
    settings, learning rate, preset source or epochs differ from today's presets."""
    from dmlviz.runs import Run, RunError, is_run

    out = Path(out)
    reasons = []
    try:
        stored = json.loads((out / SPEC_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        stored = {}
    new = spec.to_dict()
    for key in FIXED_SETTINGS:
        if key in stored and stored[key] != new[key]:
            reasons.append(f"{key} is {stored[key]!r}, not {new[key]!r}")
    for config in plan(spec):
        if not is_run(out / config["name"]):
            continue
        try:
            trained = Run.load(out / config["name"]).config
        except RunError:
            continue
        changed = [
            key
            for key in ("loss_kwargs", "lr", "preset_source", "epochs")
            if trained.get(key) != config[key]
        ]
        if changed:
            reasons.append(f"{config['name']} was trained with other {', '.join(changed)}")
    return reasons
