"""Thumbnails as ``data:image/png;base64,...`` URIs: what ``st.dataframe``'s ImageColumn and the
HTML ranked lists display, with no file served."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterable
from functools import lru_cache

from PIL import Image

THUMB_SIZE = 64  # px, the side of a thumbnail


def png_data_uri(image: Image.Image, size: int = THUMB_SIZE) -> str:
    """``image`` shrunk to fit ``size`` px (small images are upscaled, pixelated) as a PNG data URI."""
    image = image.copy()
    if max(image.size) < size:
        scale = size / max(image.size)
        new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(new, Image.Resampling.NEAREST)
    else:
        image.thumbnail((size, size))
    if image.mode not in ("RGB", "L", "RGBA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@lru_cache(maxsize=1)
def placeholder_uri(size: int = THUMB_SIZE) -> str:
    """A light grey square: the thumbnail of a sample whose image cannot be read."""
    return png_data_uri(Image.new("L", (size, size), 230), size)


class ThumbnailCache:
    """Data-URI thumbnails of one dataset split, encoded once per sample.

    ``dataset`` is anything with ``__len__`` and ``image(i) -> PIL.Image`` (a ``RetrievalDataset``);
    None gives placeholders only (a run whose data cannot be loaded here).
    """

    def __init__(self, dataset, size: int = THUMB_SIZE, max_entries: int = 20_000):
        self.dataset = dataset
        self.size = size
        self.max_entries = max_entries
        self._cache: dict[int, str] = {}

    def __call__(self, index: int) -> str:
        """The thumbnail of sample ``index`` (a placeholder when out of range or unreadable)."""
        index = int(index)
        found = self._cache.get(index)
        if found is not None:
            return found
        uri = placeholder_uri(self.size)
        if self.dataset is not None and 0 <= index < len(self.dataset):
            with contextlib.suppress(OSError, ValueError):
                uri = png_data_uri(self.dataset.image(index), self.size)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[index] = uri
        return uri

    def many(self, indices: Iterable[int]) -> list[str]:
        """Thumbnails of ``indices``, in order."""
        return [self(i) for i in indices]
