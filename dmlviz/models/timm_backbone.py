"""Any timm model as a backbone: ``timm:<name>`` is ``timm.create_model(name, num_classes=0)``.

Convolutional models (their features a ``(batch, C, H, W)`` map) get dmlviz's pooling (GeM by
default) instead of timm's; token models (ViTs: ``(batch, tokens, C)``) keep timm's own pooling
and final norm (``forward_head(pre_logits=True)``), so ``pooling`` does not apply to them.

The input pipeline stays dmlviz's (``dmlviz.data.transforms``: RGB images normalised with the
ImageNet mean and std, grayscale ones in ``[0, 1]``); an ``InputAdapter`` in front of the model
maps that to what the backbone's pretrained config asks for (its own mean and std, and three
channels for a grayscale image: the grey value in each). The input size follows the backbone's
pretrained config unless ``image_size`` is set (``data_config``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dmlviz.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from dmlviz.models.head import EmbeddingHead, EmbeddingNet, build_pooling
from dmlviz.models.weights import (
    PretrainedWeightsError,
    cached_timm_file,
    load_into,
    read_state_dict,
)

PREFIX = "timm:"


def timm_name(model: str) -> str | None:
    """The timm model name of a dmlviz model name ``timm:<name>``, else None."""
    return model[len(PREFIX) :] if model.startswith(PREFIX) else None


def check_timm_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a model timm can build (``timm.list_models()``)."""
    import timm

    if not name or not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0][:8]}*")[:5] if name else []
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise ValueError(
            f"model='timm:{name}' is unknown to timm {timm.__version__} "
            f"(see timm.list_models()){hint}"
        )


def data_config(name: str) -> dict:
    """The input timm's pretrained config of ``name`` asks for: ``input_size`` (C, H, W),
    ``interpolation``, ``mean``, ``std``, ``crop_pct`` (``timm.data.resolve_data_config``)."""
    import timm
    from timm.data import resolve_data_config

    check_timm_name(name)
    return resolve_data_config({}, pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict())


class InputAdapter(nn.Module):
    """dmlviz's normalised input -> the backbone's: ``x * scale + shift`` per channel, grey
    repeated to 3 channels first. Its buffers are derived, not saved with the weights."""

    def __init__(self, in_channels: int, mean, std):
        super().__init__()
        mean, std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
        if in_channels == 1:  # dmlviz's grey images are in [0, 1]
            given_mean, given_std = torch.zeros(1, 1, 1), torch.ones(1, 1, 1)
        else:  # dmlviz's RGB images are ImageNet-normalised
            given_mean = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
            given_std = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
        self.repeat = len(mean) if in_channels == 1 else 1
        self.register_buffer("scale", given_std / std, persistent=False)
        self.register_buffer("shift", (given_mean - mean) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, H, W) -> (batch, backbone channels, H, W)."""
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        return x * self.scale + self.shift


class TimmBackbone(nn.Module):
    """A timm model without its classifier: a feature map, or pooled features for token models."""

    def __init__(self, net: nn.Module, adapter: InputAdapter, pooled: bool):
        super().__init__()
        self.adapter = adapter
        self.net = net
        self.pooled = pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> (batch, C, H, W) features, or (batch, C) when ``pooled``."""
        features = self.net.forward_features(self.adapter(x))
        return self.net.forward_head(features, pre_logits=True) if self.pooled else features


def build_timm(
    name: str,
    embedding_dim: int,
    in_channels: int,
    image_size: int | None,
    pooling: str,
    freeze_bn: bool,
    layer_norm: bool,
    pretrained: bool,
    weights: str | Path | None = None,
) -> EmbeddingNet:
    """``timm.create_model(name, num_classes=0)`` under the embedding head, randomly initialised,
    from timm's pretrained weights in the local cache (``pretrained``), or from the state dict in
    the file ``weights``. Never downloads; missing or unfitting weights raise
    ``PretrainedWeightsError``. ``image_size`` None: the pretrained config's input size."""
    import timm

    check_timm_name(name)
    net = timm.create_model(name, pretrained=False, num_classes=0)
    cfg = net.pretrained_cfg
    classifier = cfg.get("classifier") or ()
    ignore = tuple(classifier) if isinstance(classifier, (list, tuple)) else (classifier,)
    ignore = tuple(f"{c}." for c in ignore)
    source = EmbeddingNet.weights_source
    if weights is not None:
        load_into(net, read_state_dict(weights), f"weights file {weights}", ignore)
        source = f"file {weights}"
    elif pretrained:
        path, looked = cached_timm_file(cfg)
        if path is None:
            raise PretrainedWeightsError(_not_cached_message(name, cfg, looked))
        load_into(net, read_state_dict(path), f"timm's cached weights {path}", ignore)
        source = f"timm {cfg.get('hf_hub_id') or cfg.get('url')} ({path})"
    data = data_config(name)
    channels, height, _ = data["input_size"]
    if cfg.get("fixed_input_size") and image_size not in (None, height):
        raise ValueError(
            f"image_size={image_size} does not fit timm:{name}: it takes {height} px images only "
            f"(fixed_input_size in its pretrained config); set image_size {height} or leave it unset"
        )
    side = image_size or height
    with torch.no_grad():
        probe = net.eval().forward_features(torch.zeros(1, channels, side, side))
    pooled = not (probe.ndim == 4 and probe.shape[1] == net.num_features)
    adapter = InputAdapter(in_channels, data["mean"], data["std"])
    pool = nn.Identity() if pooled else build_pooling(pooling)
    head = EmbeddingHead(net.num_features, embedding_dim, layer_norm)
    model = EmbeddingNet(TimmBackbone(net.train(), adapter, pooled), pool, head, freeze_bn)
    model.weights_source = source
    return model


def _not_cached_message(name: str, cfg: dict, looked: list[str]) -> str:
    where = " or ".join(looked) if looked else "(timm has no pretrained weights for it)"
    hub_id = cfg.get("hf_hub_id")
    fetch = (
        f'`hf download {hub_id.split("@")[0]}` (or `python -c "import timm; '
        f"timm.create_model('{name}', pretrained=True)\"`)"
        if hub_id
        else f"download {cfg.get('url')}"
    )
    return (
        f"the pretrained weights of timm:{name} are not in the local cache: expected {where}. "
        f"dmlviz never downloads; on a machine with network run {fetch} and copy the cache "
        "folder here (HF_HOME / TORCH_HOME select other cache folders), or pass a state dict "
        "with --weights FILE (.safetensors or .pth), or continue without pretrained weights "
        "(--no-pretrained on the command line, pretrained=False in Python)"
    )
