"""The dataset objects ``load_dataset`` returns: one split, yielding ``(image, label, index)``.

``RetrievalDataset`` holds what every split has (clean labels, class names, stable sample ids);
``ArrayDataset`` serves images precomputed in memory (digits) and ``ImageFileDataset`` reads image
files (everything else), caching the small grayscale ones (Omniglot) after their first decode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dmlviz.data.transforms import build_transform, max_shift, random_shift, resize_crop

THUMBNAIL_SIZE = 64  # side of the digits' thumbnails (nearest-neighbour upscaled from 8 px)


class RetrievalDataset(Dataset, ABC):
    """One split of a retrieval dataset.

    Attributes:
        name: the dataset's name in ``DATASETS``.
        split: "train", "val", "test", or for inshop "query" / "gallery".
        protocol: how train and test classes were chosen (see ``PROTOCOLS``).
        labels: int64 ``(n,)`` clean labels, contiguous ``0..C-1`` within the split (inshop's query
            and gallery share one label space, so their labels line up).
        class_names: ``class_names[label]`` is the dataset's own name of that class.
        sample_ids: a stable id per sample: the image's path relative to the dataset root, or
            ``"digits/<row>"``.
        in_channels: 1 for grayscale sets (digits, omniglot), else 3.
        image_size: side of the square tensor a sample yields.
        num_classes: ``len(class_names)``.
        root: the folder the images were read from (None for digits).
    """

    def __init__(
        self,
        *,
        name: str,
        split: str,
        protocol: str,
        labels: np.ndarray,
        class_names: Sequence[str],
        sample_ids: Sequence[str],
        in_channels: int,
        image_size: int,
        augment: bool,
        root: Path | None = None,
    ):
        self.name = name
        self.split = split
        self.protocol = protocol
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.sample_ids = list(sample_ids)
        self.in_channels = in_channels
        self.image_size = image_size
        self.augment = augment
        self.root = root
        self.num_classes = len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        """``(image, label, i)``: a float32 ``(in_channels, image_size, image_size)`` tensor, the
        clean label as an int, and the index itself (so batches can be traced to samples)."""
        i = int(i)
        return self._tensor(i), int(self.labels[i]), i

    @abstractmethod
    def _tensor(self, i: int) -> torch.Tensor:
        """The model's input for sample ``i`` (augmented when ``self.augment``)."""

    @abstractmethod
    def image(self, i: int) -> Image.Image:
        """Sample ``i`` as a PIL image at a size fit for a thumbnail, without augmentation."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
            f"protocol={self.protocol!r}, n={len(self)}, num_classes={self.num_classes}, "
            f"in_channels={self.in_channels}, image_size={self.image_size}, "
            f"augment={self.augment})"
        )


class ArrayDataset(RetrievalDataset):
    """Grayscale images held in memory as one tensor (built once, never a PIL image per item).

    ``images`` is ``(n, 1, image_size, image_size)`` float32 in ``[0, 1]``, ink bright on a dark
    background; ``thumbnails`` the same samples as uint8 ``(n, h, w)`` at their original size.
    Augmentation is :func:`~dmlviz.data.transforms.random_shift`.
    """

    def __init__(self, *, images: torch.Tensor, thumbnails: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.images = images
        self.thumbnails = thumbnails
        self._shift = max_shift(self.image_size)

    def _tensor(self, i: int) -> torch.Tensor:
        image = self.images[i]
        return random_shift(image, self._shift) if self.augment else image

    def image(self, i: int) -> Image.Image:
        """Dark ink on white, upscaled (nearest) to 64 px so an 8 px digit is visible."""
        pixels = 255 - self.thumbnails[int(i)]
        return Image.fromarray(pixels).resize(
            (THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.NEAREST
        )


class ImageFileDataset(RetrievalDataset):
    """Images read from files.

    RGB sets run the torchvision pipelines of :mod:`dmlviz.data.transforms` on every access.
    Grayscale sets (``in_channels=1``) are resized once per sample into a uint8 cache (inverted
    when ``invert``, so ink is bright on a dark background as in digits) and augmented with
    :func:`~dmlviz.data.transforms.random_shift`: after the first epoch no file is read again.
    Each DataLoader worker fills its own copy of the cache. ``boxes`` (optional) crops each image
    to ``(left, upper, right, lower)`` pixels (None: the whole image) when it is read.
    """

    def __init__(
        self,
        *,
        paths: Sequence[Path],
        invert: bool = False,
        boxes: Sequence[tuple[int, int, int, int] | None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.paths = [Path(p) for p in paths]
        self.invert = invert
        self.boxes = list(boxes) if boxes is not None else [None] * len(self.paths)
        self._mode = "L" if self.in_channels == 1 else "RGB"
        if self.in_channels == 1:
            self._resize = resize_crop(self.image_size)
            self._cache = torch.zeros(
                len(self.paths), 1, self.image_size, self.image_size, dtype=torch.uint8
            )
            self._cached = torch.zeros(len(self.paths), dtype=torch.bool)
            self._shift = max_shift(self.image_size)
        else:
            self._transform = build_transform(self.image_size, self.in_channels, self.augment)

    def image(self, i: int) -> Image.Image:
        """The image file as stored, cropped to its box, converted to "L" (grayscale sets) or
        "RGB"."""
        path, box = self.paths[int(i)], self.boxes[int(i)]
        try:
            with Image.open(path) as image:
                return (image if box is None else image.crop(box)).convert(self._mode)
        except (OSError, ValueError) as error:
            raise OSError(f"cannot read image {path}: {error}") from error

    def _tensor(self, i: int) -> torch.Tensor:
        if self.in_channels == 3:
            return self._transform(self.image(i))
        if not self._cached[i]:
            pixels = self._resize(self.image(i))
            self._cache[i] = 255 - pixels if self.invert else pixels
            self._cached[i] = True
        image = self._cache[i].to(torch.float32).div_(255)
        return random_shift(image, self._shift) if self.augment else image
