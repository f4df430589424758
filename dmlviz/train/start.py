"""Where a new run's weights come from: random, ImageNet (cached), a weights file, or a run."""

from __future__ import annotations

from typing import Any

from dmlviz.models import EmbeddingNet, build_model
from dmlviz.train.config import ConfigError


def starting_model(config: dict[str, Any], model_kwargs: dict[str, Any]) -> EmbeddingNet:
    """The model a new run trains, built as ``model_kwargs`` say and started from the weights
    ``config`` names (``pretrained``, ``weights`` or ``init_from``); its ``weights_source``
    says which, for the run's config."""
    model = build_model(**model_kwargs, pretrained=config["pretrained"], weights=config["weights"])
    if config["init_from"]:
        from dmlviz.runs import Run

        source = Run.load(config["init_from"])
        try:
            model.load_state_dict(source.load_model().state_dict())
        except RuntimeError as error:
            raise ConfigError(
                "init_from",
                config["init_from"],
                f"its weights do not fit this model (set the model keys as that run has them: "
                f"{str(error).splitlines()[0]})",
            ) from None
        epoch = source.status().get("epoch")
        model.weights_source = f"run {source.path} (epoch {epoch}): backbone and head"
    return model
