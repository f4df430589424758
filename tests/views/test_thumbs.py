"""Thumbnails as data URIs."""

import base64
import io
from urllib.parse import unquote

from PIL import Image

from dmlviz.views.thumbs import ThumbnailCache, captioned_uri, placeholder_uri, png_data_uri


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_small_images_are_upscaled_and_big_ones_shrunk():
    assert _decode(png_data_uri(Image.new("L", (8, 8)), 64)).size == (64, 64)
    assert _decode(png_data_uri(Image.new("RGB", (300, 150)), 64)).size == (64, 32)
    assert _decode(png_data_uri(Image.new("P", (10, 10)), 20)).mode in ("RGB", "L", "P")


class _Dataset:
    calls = 0

    def __len__(self):
        return 2

    def image(self, i):
        _Dataset.calls += 1
        if i == 1:
            raise OSError("unreadable")
        return Image.new("L", (8, 8), 0)


def test_cache_encodes_once_and_falls_back_to_placeholders():
    thumbs = ThumbnailCache(_Dataset())
    first = thumbs(0)
    assert thumbs(0) == first and _Dataset.calls == 1
    assert thumbs(1) == placeholder_uri() and thumbs(5) == placeholder_uri()
    assert ThumbnailCache(None).many([0, 1]) == [placeholder_uri()] * 2


def _svg(uri: str) -> str:
    assert uri.startswith("data:image/svg+xml;utf8,")
    return unquote(uri.split(",", 1)[1])


def test_captioned_thumbnail_holds_the_image_and_its_escaped_caption():
    thumbnail = placeholder_uri()
    svg = _svg(captioned_uri(thumbnail, "<cat & dog>", color="#d73027"))
    assert f"href='{thumbnail}'" in svg
    assert ">&lt;cat &amp; dog&gt;</text>" in svg and "fill='#d73027'" in svg
    assert ">Black_footed_…</text>" in _svg(captioned_uri(thumbnail, "Black_footed_Albatross"))
