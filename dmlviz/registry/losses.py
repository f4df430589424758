"""The losses, one ``register_loss`` call each, with every hyperparameter declared once.

A ``Hyperparameter`` holds all that dmlviz says about one argument of a loss: its paper default,
the values the loss accepts (the check that ``ContextualLoss`` and ``RankedListLoss`` run), the
range ``dmlviz tune`` searches, the slider of the Loss anatomy page and its help line. From them
come the constructors' defaults and checks, tune's search space (``LossEntry.search``), the
anatomy sliders, ``contextual.PRESETS``, the recipes' loss settings and the paper presets
(``dmlviz.presets.paper_presets``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dmlviz.registry._common import load_factory, names_help
from dmlviz.validate import InvalidValue, check_number

SearchSpace = Callable[[Any, dict[str, Any]], dict[str, Any]]  # (optuna trial, config) -> kwargs
PER_CLASS = "m_per_class"  # a search bound naming this config key is the images per class


@dataclass(frozen=True)
class Hyperparameter:
    """One argument of a loss.

    ``default``: the paper's value; with ``follows`` (another argument's name) it is
    ``derive(that argument)`` instead, and ``None`` given to the loss means the same.
    ``low`` / ``high`` (None: unbounded), ``low_open`` / ``high_open``, ``integer``: the values
    the loss accepts. ``search``: the ``(low, high)`` that ``dmlviz tune`` searches (``log``:
    on a log scale; a high of ``PER_CLASS`` is the config's images per class), None when not
    searched. ``slider``: ``(low, high, step)`` of the Loss anatomy page, None for no slider.
    """

    name: str
    default: float | None
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    search: tuple[float, float | str] | None = None
    log: bool = False
    slider: tuple[float, float, float] | None = None
    follows: str | None = None
    derive: Callable[[float], float] | None = None

    def check(self, value: Any) -> None:
        """``InvalidValue`` naming the argument, the value and the range unless the loss accepts
        ``value`` (None where the default follows another argument)."""
        if value is None and self.follows is not None:
            return
        bounds = dict(low_open=self.low_open, high_open=self.high_open, integer=self.integer)
        check_number(self.name, value, self.low, self.high, **bounds)

    def suggest(self, trial, config: dict[str, Any]) -> float:
        """A value from the search range, drawn by the Optuna ``trial`` for the training
        ``config`` (which names the images per class)."""
        low, high = self.search
        if high == PER_CLASS:
            high = max(low, config[PER_CLASS])
        if self.integer:
            return trial.suggest_int(self.name, low, high, log=self.log)
        return trial.suggest_float(self.name, low, high, log=self.log)


@dataclass(frozen=True)
class LossEntry:
    """A loss's facts. ``per_class`` names the hyperparameter the papers set to the images per
    class of a batch, which the paper presets of each dataset follow. ``search_rule`` couples
    searched hyperparameters: given ``suggest(name)`` it returns their values, drawn before the
    others. ``variants`` are other published settings, by name: what they change from the
    defaults."""

    name: str
    factory: str
    hyperparameters: tuple[Hyperparameter, ...]
    reference: str
    display_name: str
    color: str
    help: str
    per_class: str | None = None
    search_rule: Callable[[Callable[[str], float]], dict[str, float]] | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Any]:
        """The constructor arguments as the paper sets them (what ``dmlviz.losses.build(name)``
        uses and the paper presets hold), derived ones computed."""
        values: dict[str, Any] = {}
        for p in self.hyperparameters:
            values[p.name] = p.derive(values[p.follows]) if p.follows else p.default
        return values

    @property
    def follows(self) -> dict[str, str]:
        """``{derived argument: the argument it follows}``: when a caller sets the second, the
        loss derives the first again instead of taking the registered value."""
        return {p.name: p.follows for p in self.hyperparameters if p.follows}

    def hyperparameter(self, name: str) -> Hyperparameter:
        """The declaration of argument ``name``."""
        return next(p for p in self.hyperparameters if p.name == name)

    def check(self, **values: Any) -> None:
        """Check each given argument against its declaration (``Hyperparameter.check``)."""
        for name, value in values.items():
            self.hyperparameter(name).check(value)

    def search(self, trial, config: dict[str, Any]) -> dict[str, Any]:
        """``dmlviz tune``'s search space: the searched hyperparameters drawn by the Optuna
        ``trial`` for the training ``config`` (the coupled ones of ``search_rule`` first)."""
        suggest = lambda name: self.hyperparameter(name).suggest(trial, config)
        chosen = self.search_rule(suggest) if self.search_rule else {}
        for p in self.hyperparameters:
            if p.search is not None and p.name not in chosen:
                chosen[p.name] = suggest(p.name)
        return chosen

    def variant(self, name: str) -> dict[str, Any]:
        """The constructor arguments of the published setting ``name`` (one of ``variants``)."""
        return {**self.defaults, **self.variants[name]}

    def load(self) -> Callable:
        """The factory (a class or function), imported now."""
        return load_factory(self.factory)


LOSSES: dict[str, LossEntry] = {}


def register_loss(**facts: Any) -> LossEntry:
    """Add the loss ``facts["name"]`` (``LossEntry``'s fields); returns its entry."""
    entry = LossEntry(**facts)
    if entry.name in LOSSES:
        raise ValueError(f"loss {entry.name!r} is registered twice")
    LOSSES[entry.name] = entry
    return entry


def loss_entry(name: str) -> LossEntry:
    """The entry of loss ``name``; ``InvalidValue`` naming the choices for an unknown one."""
    if name not in LOSSES:
        raise InvalidValue("loss", name, f"unknown loss; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def loss_help() -> str:
    """The CLI's help for a loss option: every loss by name."""
    return names_help(list(LOSSES))


def search_table() -> str:
    """The Markdown table of docs/tuning.md's "Search spaces": each loss's searched
    hyperparameters (``Hyperparameter.search``, the coupled ones as ``search_rule``'s docstring
    says) and its paper defaults, the images-per-class one as such."""
    rows = [
        "| loss | searched (besides `lr`) | paper defaults |",
        "|---|---|---|",
    ]
    for entry in LOSSES.values():
        searched = [_search_range(p) for p in entry.hyperparameters if p.search is not None]
        if entry.search_rule is not None:
            searched.append(entry.search_rule.__doc__.strip())
        defaults = [
            f"`{p.name}` images per class" if p.name == entry.per_class else f"`{p.name}` {v:g}"
            for p, v in zip(entry.hyperparameters, entry.defaults.values(), strict=True)
        ]
        rows.append(f"| {entry.name} | {', '.join(searched)} | {', '.join(defaults)} |")
    return "\n".join(rows)


def _search_range(p: Hyperparameter) -> str:
    """``p``'s search range as the table writes it: `k` 2..m-per-class, `eps` 0.005-0.5 (log)."""
    low, high = p.search
    high = "m-per-class" if high == PER_CLASS else f"{high:g}"
    return f"`{p.name}` {low:g}{'..' if p.integer else '-'}{high}{' (log)' if p.log else ''}"


# --- the paper losses ---------------------------------------------------------------------------


def _weights_summing_to_one(suggest: Callable[[str], float]) -> dict[str, float]:
    """`contrastive_weight` = 1 - the other two weights"""  # search_table() shows this line
    # The three weights sum to 1 as in the 256 px recipe (0.4 / 0.5 / 0.1); under AdamW only
    # their ratios matter, the learning rate sets the step.
    ctx_weight, reg_weight = suggest("ctx_weight"), suggest("reg_weight")
    contrastive_weight = max(0.0, 1.0 - ctx_weight - reg_weight)
    return dict(ctx_weight=ctx_weight, contrastive_weight=contrastive_weight, reg_weight=reg_weight)


register_loss(
    name="contextual",
    factory="dmlviz.losses.contextual:ContextualLoss",
    hyperparameters=(
        Hyperparameter("k", 4, "neighbourhood size, counting the point itself", low=2, integer=True,
                       search=(2, PER_CLASS), slider=(2, 12, 1)),
        Hyperparameter("eps", 0.05, "slack on the k-th neighbour's squared distance", low=0, high=4,
                       search=(0.005, 0.5), log=True, slider=(0.0, 0.5, 0.01)),
        Hyperparameter("ctx_weight", 0.4, "weight of the contextual term (W vs labels)", low=0,
                       search=(0.05, 0.95), slider=(0.0, 2.0, 0.05)),
        Hyperparameter("contrastive_weight", 0.5, "weight of the contrastive hinge on S", low=0,
                       slider=(0.0, 2.0, 0.05)),  # searched as 1 - the other two weights
        Hyperparameter("reg_weight", 0.1, "weight of the batch-mean similarity regulariser", low=0,
                       search=(0.0, 0.3), slider=(0.0, 1.0, 0.05)),
        Hyperparameter("rho", 0.25, "target of the batch-mean cosine similarity", low=-1, high=1,
                       slider=(-1.0, 1.0, 0.05)),
        Hyperparameter("pos_margin", 0.75, "positives are pulled above this cosine", low=-1, high=1,
                       slider=(-1.0, 1.0, 0.05)),
        Hyperparameter("neg_margin", 0.6, "negatives are pushed below this cosine", low=-1, high=1,
                       slider=(-1.0, 1.0, 0.05)),
    ),
    per_class="k",
    search_rule=_weights_summing_to_one,
    # The defaults are R256, the original release (main.py), every dataset. R224
    # (224x224/train.py), Cars and SOP: its --lam 0.2 weights the *contrastive* term, so the
    # contextual weight is 0.8; --gamma 0.1, --regsim 0.3. (Its CUB run used --lam 0.05, eps 0.04.)
    variants={"256px": {}, "224px": dict(ctx_weight=0.8, contrastive_weight=0.2, rho=0.3)},
    reference="Liao, Tsiligkaridis & Kulis, ICML 2023: official code, 256 px recipe "
    "(docs/contextual.md: eps 0.05, weights 0.4/0.5/0.1, rho 0.25, margins 0.75/0.6)",
    display_name="Contextual",
    color="#0072B2",  # Okabe-Ito, colour-blind-safe, as every loss colour here
    help="the contextual loss (Liao et al., ICML 2023)",
)  # fmt: skip


def rll_alpha(margin: float) -> float:
    """RLL-Simpler's negative boundary for the margin m: alpha = 1 + m / 2 (the TPAMI code)."""
    return 1 + margin / 2


register_loss(
    name="rll",
    factory="dmlviz.losses.ranked_list:RankedListLoss",
    hyperparameters=(
        # Distances between unit vectors lie in [0, 2]: at alpha 2 every negative pair is active.
        Hyperparameter("margin", 0.4, "m: positives are pulled within alpha - m", low=0, high=2,
                       search=(0.05, 1.0), slider=(0.0, 2.0, 0.05)),
        Hyperparameter("alpha", None, "negatives closer than alpha are pushed out", low=0, high=2,
                       low_open=True, search=(0.8, 2.0), slider=(0.05, 2.0, 0.05),
                       follows="margin", derive=rll_alpha),
        Hyperparameter("tn", 10.0, "temperature of negative weights (high: hardest only)", low=0,
                       search=(0.0, 20.0), slider=(0.0, 50.0, 1.0)),
        Hyperparameter("tp", 0.0, "temperature of positive weights (0: all alike)", low=0,
                       slider=(0.0, 50.0, 1.0)),
        Hyperparameter("imbalance", 0.5, "lambda: weight of the negative part", low=0, high=1,
                       slider=(0.0, 1.0, 0.05)),
    ),
    reference="Wang et al., TPAMI 2021 (RLL-Simpler), released SOP config: alpha 1.2 = 1 + m/2, "
    "m 0.4, T_n 10, T_p 0 (docs/rll.md 1.8)",
    display_name="Ranked List Loss",
    color="#E69F00",
    help="the Ranked List Loss (Wang et al., TPAMI 2021)",
)  # fmt: skip


# --- baselines (pytorch-metric-learning's classes, which check no ranges) ------------------------

register_loss(
    name="multisimilarity",
    factory="pytorch_metric_learning.losses:MultiSimilarityLoss",
    hyperparameters=(
        Hyperparameter("alpha", 2.0, "weight scale of positive pairs",
                       search=(0.5, 10.0), log=True),
        Hyperparameter("beta", 50.0, "weight scale of negative pairs",
                       search=(10.0, 100.0), log=True),
        Hyperparameter("base", 1.0, "lambda: the similarity the weights are centred on",
                       search=(0.2, 1.2)),
    ),
    reference="Wang et al., CVPR 2019: alpha 2, beta 50, lambda 1 (pytorch-metric-learning's "
    "default base is 0.5; no pair miner here)",
    display_name="Multi-Similarity",
    color="#009E73",
    help="baseline, pytorch-metric-learning's MultiSimilarityLoss",
)  # fmt: skip

register_loss(
    name="contrastive",
    factory="pytorch_metric_learning.losses:ContrastiveLoss",
    hyperparameters=(
        Hyperparameter("pos_margin", 0.0, "positives are pulled within this distance",
                       search=(0.0, 0.6)),
        Hyperparameter("neg_margin", 1.0, "negatives are pushed past this distance",
                       search=(0.6, 1.6)),
    ),
    reference="Hadsell, Chopra & LeCun, CVPR 2006 (positives pulled to distance 0, negatives "
    "pushed past margin 1, Euclidean distance on unit vectors; the paper fixes no margin value, "
    "1 is pytorch-metric-learning's default)",
    display_name="Contrastive",
    color="#CC79A7",
    help="baseline, pytorch-metric-learning's ContrastiveLoss",
)  # fmt: skip

register_loss(
    name="triplet",
    factory="pytorch_metric_learning.losses:TripletMarginLoss",
    hyperparameters=(
        Hyperparameter("margin", 0.2, "negatives are pushed this much farther than positives",
                       search=(0.01, 0.5), log=True),
    ),
    reference="Schroff, Kalenichenko & Philbin (FaceNet), CVPR 2015: margin 0.2, all triplets "
    "of the batch (pytorch-metric-learning's default margin is 0.05)",
    display_name="Triplet",
    color="#56B4E9",
    help="baseline, pytorch-metric-learning's TripletMarginLoss",
)  # fmt: skip
