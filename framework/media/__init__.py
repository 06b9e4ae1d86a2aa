"""Media handling shared by every plugin that reads a kind of media, whatever it trains.

* :mod:`framework.media.images`: decoding any image file once to 8-bit RGB at one size
  (:func:`~framework.media.images.decode_image`) and an in-memory store of decoded pixels
  (:class:`~framework.media.images.ImageStore`) whose probe the core readers run while loading;
* :mod:`framework.media.augment`: albumentations pipelines built from config with errors that name
  the transform and key (:func:`~framework.media.augment.build_pipeline`), and the seeded
  perturbation conditions of robustness evaluations
  (:func:`~framework.media.augment.condition_pipelines`).

These modules import Pillow and albumentations; nothing here is imported by the core's own
modules, so a plugin that reads no images never loads them.
"""
