"""Image pipelines: PIL image in, float32 ``(C, H, W)`` tensor out.

RGB sets (``in_channels=3``) get the usual metric-learning pipelines, normalised with the ImageNet
mean and standard deviation (what pretrained backbones expect):

- train: ``RandomResizedCrop(image_size, scale=(0.16, 1))`` + horizontal flip;
- eval: resize the short side to ``image_size * 256 / 224`` + ``CenterCrop(image_size)``.

Grayscale sets (``in_channels=1``: digits, Omniglot) stay in ``[0, 1]`` without normalisation and
are augmented with :func:`random_shift`, a few pixels of translation applied to a cached tensor, so
that a batch costs no image decoding at all.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224  # eval: resize to this times the crop, then crop the centre
TRAIN_SCALE = (0.16, 1.0)  # RandomResizedCrop's range of the image area kept


def _check(image_size: int, in_channels: int) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: use a positive int")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels={in_channels!r} is invalid: use 1 (grayscale) or 3 (RGB)")


def _to_float(in_channels: int) -> list:
    steps = [v2.ToDtype(torch.float32, scale=True)]
    if in_channels == 3:
        steps.append(v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD))
    return steps


def resize_crop(image_size: int) -> v2.Compose:
    """PIL image -> uint8 tensor image: short side resized to ``image_size`` (antialiased), then
    the centre ``image_size`` square. Used to fill the grayscale sets' caches."""
    _check(image_size, 1)
    return v2.Compose(
        [v2.ToImage(), v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    )


def eval_transform(image_size: int = 224, in_channels: int = 3) -> v2.Compose:
    """The deterministic pipeline: PIL image (already in the right mode: "RGB" or "L") -> float32
    ``(in_channels, image_size, image_size)``. RGB: resize to ``image_size * 256/224``, centre
    crop, ImageNet normalisation; grayscale: resize, centre crop, values in ``[0, 1]``."""
    _check(image_size, in_channels)
    resize = round(image_size * RESIZE_RATIO) if in_channels == 3 else image_size
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(image_size),
            *_to_float(in_channels),
        ]
    )


def train_transform(image_size: int = 224, in_channels: int = 3) -> v2.Compose:
    """The augmenting pipeline: ``RandomResizedCrop(image_size, scale=(0.16, 1))`` and a random
    horizontal flip, then the same conversion as :func:`eval_transform`; float32
    ``(in_channels, image_size, image_size)``. Random draws come from torch's global generator."""
    _check(image_size, in_channels)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, scale=TRAIN_SCALE, antialias=True),
            v2.RandomHorizontalFlip(),
            *_to_float(in_channels),
        ]
    )


def build_transform(image_size: int, in_channels: int, augment: bool) -> v2.Compose:
    """:func:`train_transform` when ``augment`` else :func:`eval_transform`."""
    return (train_transform if augment else eval_transform)(image_size, in_channels)


def max_shift(image_size: int) -> int:
    """How many pixels :func:`random_shift` may move a grayscale image of this side (1 for the 8 px
    digits, 2 for 28 px Omniglot): about a twelfth of the side, at least 1."""
    return max(1, round(image_size / 12))


def random_shift(image: torch.Tensor, shift: int) -> torch.Tensor:
    """``image`` (C, H, W) translated by a random whole number of pixels in ``[-shift, shift]``
    along each axis; uncovered pixels are 0 (the background of the grayscale sets). A copy; the
    offsets come from torch's global generator."""
    dy, dx = torch.randint(-shift, shift + 1, (2,)).tolist()
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out
