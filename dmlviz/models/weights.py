"""Backbone weights from local files only: a user's ``--weights FILE`` or timm's cached downloads.

Nothing here touches the network. A file is read as safetensors, or with
``torch.load(weights_only=True)`` (a pickle that would run code is refused), and must hold a flat
state dict of tensors whose names and shapes fit the backbone.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class PretrainedWeightsError(ValueError):
    """Weights were asked for but cannot be used; the message says which file, where, and how to
    go on."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the weights file ``path`` (``.safetensors``, or a ``.pth``/``.pt``/``.bin``
    state dict), on the CPU. A checkpoint dict holding the weights under ``state_dict``, ``model``
    or ``state_dict_ema`` is unwrapped. Raises ``PretrainedWeightsError`` for a missing file, an
    unknown suffix, a pickle that needs code to load, or anything that is not a dict of tensors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PretrainedWeightsError(f"weights file {path} does not exist")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise PretrainedWeightsError(
            f"weights file {path}: unknown suffix {path.suffix!r}; use one of "
            f"{', '.join(WEIGHT_SUFFIXES)}"
        )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise PretrainedWeightsError(
                f"weights file {path} is not valid safetensors: {error}"
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for code, many types for a damaged file
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise PretrainedWeightsError(
            f"weights file {path} cannot be read with torch.load(weights_only=True) "
            f"({type(error).__name__}: {first_line}): it is damaged, not a torch file, or a "
            "pickle that needs code to load, which is never run. Save the weights with "
            "torch.save(model.state_dict(), file) or as .safetensors"
        ) from None
    if isinstance(state, dict):
        for key in ("state_dict", "model", "state_dict_ema"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise PretrainedWeightsError(
            f"weights file {path} holds a {type(state).__name__}, not a state dict "
            "(a dict of parameter names to tensors)"
        )
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise PretrainedWeightsError(
            f"weights file {path} is not a state dict: entry {bad[0]!r} is not a named tensor"
        )
    return state


def load_into(
    module: nn.Module, state: dict[str, torch.Tensor], source: str, ignore: tuple[str, ...] = ()
) -> None:
    """Load ``state`` into ``module`` strictly, except keys starting with a prefix in ``ignore``
    (a classifier that is not part of the backbone), on either side. Raises ``PretrainedWeightsError`` naming
    ``source`` and the first missing, unexpected or wrongly shaped tensors."""
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(ignore)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} (the model has {tuple(v.shape)})"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if shapes:
        problems.append(f"{len(shapes)} with the wrong shape: {', '.join(shapes[:3])}")
    if missing:
        problems.append(f"{len(missing)} missing: {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {', '.join(unexpected[:3])}")
    if problems:
        raise PretrainedWeightsError(
            f"{source} does not fit the backbone: {'; '.join(problems)}. It must be a state dict "
            "of this architecture (as model.state_dict() of the same model saves it)"
        )
    module.load_state_dict(state, strict=False)  # every key but the ignored ones checked above


def cached_timm_file(pretrained_cfg: dict) -> tuple[Path | None, list[str]]:
    """Where timm's pretrained weights for ``pretrained_cfg`` lie in the local caches, without
    downloading: the Hugging Face hub cache (``hf_hub_id``) first, then torch's hub cache
    (``url``). Returns the file (None when absent) and the places looked in, for the error."""
    looked: list[str] = []
    hub_id = pretrained_cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.constants import HF_HUB_CACHE

        repo, _, revision = hub_id.partition("@")
        names = (
            [pretrained_cfg.get("hf_hub_filename")] if pretrained_cfg.get("hf_hub_filename") else []
        )
        names += ["model.safetensors", "pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name, revision=revision or None)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found), looked
        folder = f"models--{repo.replace('/', '--')}"
        looked.append(f"{HF_HUB_CACHE}/{folder}/snapshots/<revision>/{names[0]}")
    url = pretrained_cfg.get("url")
    if url:
        from torch.hub import get_dir

        path = Path(get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
        if path.is_file():
            return path, looked
        looked.append(str(path))
    return None, looked
