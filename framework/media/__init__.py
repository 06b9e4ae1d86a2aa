"""Media handling shared by every plugin that reads a kind of media, whatever it trains.

* :mod:`framework.media.images`: decoding any image file once to 8-bit RGB at one size
  (:func:`~framework.media.images.decode_image`) and an in-memory store of decoded pixels
  (:class:`~framework.media.images.ImageStore`) whose probe the core readers run while loading;
* :mod:`framework.media.augment`: albumentations pipelines built from config with errors that name
  the transform and key (:func:`~framework.media.augment.build_pipeline`), and the seeded
  perturbation conditions of robustness evaluations
  (:func:`~framework.media.augment.condition_pipelines`).

These modules import Pillow and albumentations; nothing here is imported by the core's own
modules, so a plugin that reads no images never loads them. The names in ``__all__`` are public
(``from framework.media import ImageStore, build_pipeline``, documented in ``docs/plugins.md``)
and load on first use; the submodules' other names are internal.
"""

from __future__ import annotations

from typing import Any

from framework import _lazy_exports

# The public names (docs/plugins.md), loaded on first use: name -> module that defines it.
_LAZY = {
    "ImageSpec": "framework.media.images",
    "timm_kwargs": "framework.media.images",
    "timm_pretrained_cfg": "framework.media.images",
    "local_timm_dir": "framework.media.images",
    "LOCAL_DIR": "framework.media.images",
    "ImageInfo": "framework.media.images",
    "ImageStore": "framework.media.images",
    "SampleImages": "framework.media.images",
    "RESIZE_MODES": "framework.media.images",
    "decode_image": "framework.media.images",
    "resize_to": "framework.media.images",
    "image_statistics": "framework.media.images",
    "AugmentationError": "framework.media.augment",
    "build_pipeline": "framework.media.augment",
    "apply": "framework.media.augment",
    "crops_to_size": "framework.media.augment",
    "condition_pipelines": "framework.media.augment",
}

__all__ = list(_LAZY)
_load, _names = _lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:  # a def, so type checkers see the module's lazy names as Any
    return _load(name)


def __dir__() -> list[str]:
    return _names()
