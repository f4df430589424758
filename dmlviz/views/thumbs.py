"""Thumbnails as ``data:image/png;base64,...`` URIs: what ``st.dataframe``'s ImageColumn and the
HTML ranked lists display, with no file served."""

from __future__ import annotations

import base64
import contextlib
import html
import io
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote

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


CAPTION_CHARS = 14  # a longer caption is cut, with an ellipsis, to fit under the thumbnail
SVG_SAFE = " '=/:;,<>"  # characters an SVG data URI may hold as they are


def captioned_uri(
    thumbnail: str, caption: str, size: int = THUMB_SIZE, color: str = "#31333f"
) -> str:
    """A thumbnail data URI with ``caption`` written under it (in ``color``), as an SVG data URI:
    one picture per table cell (``st.column_config.ImageColumn``) showing an image and its class."""
    if len(caption) > CAPTION_CHARS:
        caption = caption[: CAPTION_CHARS - 1] + "…"
    width, height = size + 32, size + 18
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'><image href='"
    )
    tail = (
        f"' x='16' y='0' width='{size}' height='{size}'/>"
        f"<text x='{width / 2:g}' y='{height - 4}' text-anchor='middle' font-size='13' "
        f"font-family='sans-serif' fill='{color}'>{html.escape(caption)}</text></svg>"
    )
    # Percent-encoded, not base64: the thumbnail inside is base64 already (URL-safe, left as it
    # is), so only the few characters around it need quoting.
    head, tail = quote(head, safe=SVG_SAFE), quote(tail, safe=SVG_SAFE)
    return f"data:image/svg+xml;utf8,{head}{thumbnail}{tail}"


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
