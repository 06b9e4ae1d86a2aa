"""Checks shared by the tests of HTML reports: sections, embedded images, no outside resources."""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

_IMG = re.compile(r'<img src="data:image/png;base64,([^"]+)"')


def section_ids(html: str) -> list[str]:
    """The ``id`` of every ``<section>``, in page order."""
    return re.findall(r'<section id="([^"]+)"', html)


def embedded_images(html: str) -> list[Image.Image]:
    """Every embedded PNG, decoded and verified (raises on a broken one)."""
    images = []
    for data in _IMG.findall(html):
        raw = base64.b64decode(data, validate=True)
        Image.open(io.BytesIO(raw)).verify()
        image = Image.open(io.BytesIO(raw))
        image.load()
        images.append(image)
    assert html.count("<img ") == len(images), "every <img> must be an embedded PNG"
    return images


def assert_self_contained(html: str) -> None:
    """No scripts and nothing fetched from elsewhere: the page reads offline."""
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html), "the page must not load anything from a network"
