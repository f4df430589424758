"""The project's one schema: each entry's facts registered once, next to each other.

As timm's ``register_model``: every loss and every backbone is one ``register_*`` call with its
factory (``"module:attribute"``, imported when built, so the registry stays free of torch and the
CLI and dashboard can read it fast), and everything the rest of dmlviz says about it:

* a loss (``losses.py``): each hyperparameter's paper default, the values it accepts, its search
  space for ``dmlviz tune`` and its slider on the Loss anatomy page (``Hyperparameter``), the
  ``reference`` the defaults come from, its display name and colour in the dashboard and its help
  line in the CLI;
* a backbone (``backbones.py``): its help line, whether ImageNet weights exist for it and the
  input side it needs.

``dmlviz.losses.build`` and ``dmlviz.models.build_model`` create them; ``LOSSES`` and
``BACKBONES`` are the names the config check, the CLI and the views accept.
"""

from dmlviz.registry._common import names_help
from dmlviz.registry.backbones import BACKBONES, BackboneEntry, backbone_help, register_backbone
from dmlviz.registry.losses import (
    LOSSES,
    PER_CLASS,
    Hyperparameter,
    LossEntry,
    SearchSpace,
    loss_entry,
    loss_help,
    register_loss,
    rll_alpha,
)

__all__ = [
    "BACKBONES",
    "LOSSES",
    "PER_CLASS",
    "BackboneEntry",
    "Hyperparameter",
    "LossEntry",
    "SearchSpace",
    "backbone_help",
    "loss_entry",
    "loss_help",
    "names_help",
    "register_backbone",
    "register_loss",
    "rll_alpha",
]
