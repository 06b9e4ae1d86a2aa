"""Albumentations pipelines built from config, with errors that say what to fix.

A pipeline spec is an ordered mapping of transform name to arguments, as written in YAML::

    augment:
      RandomResizedCrop: {scale: [0.8, 1.0]}
      Affine: {rotate: [-10, 10], p: 0.5}
      HorizontalFlip: null        # switched off

albumentations only *warns* about an unknown argument and pydantic's message does not name the
transform, so every argument is checked against the transform's signature first: a mistake is a
:class:`AugmentationError` naming the transform, the bad key and the valid ones.
"""

from __future__ import annotations

import difflib
import inspect
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from framework.errors import FrameworkError

if TYPE_CHECKING:  # albumentations (and OpenCV under it) load when a pipeline is built
    import albumentations as A

# Bases and wrappers that are not themselves image transforms.
_NOT_TRANSFORMS = {"BasicTransform", "DualTransform", "ImageOnlyTransform", "Transform3D", "NoOp"}


class AugmentationError(FrameworkError, ValueError):
    """A transform pipeline in the config cannot be built; the message names what and where."""


@lru_cache(maxsize=1)
def transform_names() -> tuple[str, ...]:
    """Names of every albumentations transform a pipeline may use, sorted."""
    import albumentations as A
    names = []
    for name in dir(A):
        obj = getattr(A, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, A.BasicTransform)
            and not issubclass(obj, A.Transform3D)  # volumes, not images
            and not name.startswith("_")
            and name not in _NOT_TRANSFORMS
        ):
            names.append(name)
    return tuple(sorted(names))


def transform_arguments(name: str) -> list[str]:
    """The keyword arguments the transform ``name`` accepts."""
    import albumentations as A
    params = inspect.signature(getattr(A, name)).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _plain(value: Any) -> Any:
    """Config values as albumentations expects them: lists become tuples, recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _hint(key: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def build_transform(
    name: str, args: Mapping[str, Any] | None, size: tuple[int, int], where: str, default_p: float | None = None
) -> A.BasicTransform:
    """One albumentations transform from its config entry.

    Args:
        name: The transform's class name in albumentations (``RandomResizedCrop``).
        args: Its keyword arguments from the config (``None`` or ``{}`` for the defaults).
        size: The model's input size ``(height, width)``, given to transforms that produce an
            output size (``size=`` or ``height=``/``width=``) when ``args`` does not set it.
        where: The config path of the pipeline (``modality.augment``), for error messages.
        default_p: Probability to use when ``args`` has no ``p`` (robustness conditions use 1).

    Raises:
        AugmentationError: unknown transform, unknown argument, or a value the transform refuses.
    """
    import albumentations as A
    if name not in transform_names():
        raise AugmentationError(
            f"{where}: unknown transform {name!r}.{_hint(name, transform_names())} "
            f"Valid transforms (albumentations {A.__version__}): {', '.join(transform_names())}."
        )
    if args is not None and not isinstance(args, Mapping):
        raise AugmentationError(
            f"{where}.{name}: arguments must be a mapping such as {{p: 0.5}}, got {args!r}; "
            f"use null to switch the transform off."
        )
    kwargs = {str(k): _plain(v) for k, v in (args or {}).items()}
    valid = transform_arguments(name)
    for key in kwargs:
        if key not in valid:
            raise AugmentationError(
                f"{where}.{name}: unknown argument {key!r}.{_hint(key, valid)} "
                f"Valid arguments of {name}: {', '.join(valid)}."
            )
    if "size" in valid and "size" not in kwargs:
        kwargs["size"] = size
    if "height" in valid and "width" in valid and "height" not in kwargs and "width" not in kwargs:
        kwargs["height"], kwargs["width"] = size
    if default_p is not None and "p" in valid and "p" not in kwargs:
        kwargs["p"] = default_p
    try:
        return getattr(A, name)(**kwargs)
    except Exception as exc:  # pydantic ValidationError, TypeError, ValueError from the transform
        detail = " ".join(str(exc).split())
        raise AugmentationError(
            f"{where}.{name}: invalid arguments {kwargs}: {detail}. Valid arguments of {name}: {', '.join(valid)}."
        ) from None


def build_pipeline(
    spec: Mapping[str, Any] | None, size: tuple[int, int], where: str, default_p: float | None = None
) -> A.Compose:
    """An ``A.Compose`` of the enabled transforms of ``spec``, in order.

    Args:
        spec: Transform name -> arguments; entries whose value is ``None`` are switched off.
        size: The model's input size ``(height, width)``.
        where: The config path of the pipeline, for error messages.
        default_p: Probability for transforms whose arguments give none.
    """
    import albumentations as A
    transforms = [
        build_transform(str(name), args, size, where, default_p)
        for name, args in (spec or {}).items()
        if args is not None
    ]
    # strict=True makes albumentations refuse unknown call arguments instead of ignoring them.
    return A.Compose(transforms, strict=True)


def crops_to_size(pipeline: A.Compose | None, size: tuple[int, int]) -> bool:
    """Whether ``pipeline`` starts by cropping every image to ``size``: a random sized crop
    (``RandomResizedCrop``, ``RandomSizedCrop``) applied always (``p`` 1, pipeline ``p`` 1) whose
    output is the model's ``(height, width)``.

    Such a pipeline takes any image size, so a decoder may hand it the decoded file as it is and
    let the crop do the one resize (crop, then resize the crop, as timm and torchvision train)
    instead of resizing the whole image to ``size`` first and cropping from that.
    """
    if pipeline is None or not pipeline.transforms or float(getattr(pipeline, "p", 1.0)) < 1.0:
        return False
    import albumentations as A
    first = pipeline.transforms[0]
    if not isinstance(first, (A.RandomResizedCrop, A.RandomSizedCrop)) or float(first.p) < 1.0:
        return False
    return tuple(int(v) for v in first.size) == (int(size[0]), int(size[1]))


def apply(pipeline: A.Compose, image: np.ndarray) -> np.ndarray:
    """Run ``pipeline`` on one ``(H, W, 3)`` uint8 RGB image; returns the same layout."""
    if not pipeline.transforms:
        return image
    return pipeline(image=image)["image"]


def condition_pipelines(
    conditions: Mapping[str, Any] | None, size: tuple[int, int], where: str, seed: int = 0
) -> dict[str, A.Compose]:
    """The perturbations of a robustness evaluation, one seeded pipeline per condition.

    Args:
        conditions: Condition name -> pipeline spec (``{"jpeg_q20": {"ImageCompression": {...}}}``);
            a condition whose spec is ``None`` is switched off.
        size: The model's input size ``(height, width)``.
        where: The config path of the conditions (``modality.robustness``), for error messages.
        seed: Seed of every pipeline, so that reruns perturb the same images the same way.

    Returns:
        Condition name -> pipeline; each transform without a ``p`` is applied to every image.
    """
    import albumentations as A
    out: dict[str, A.Compose] = {}
    for name, spec in (conditions or {}).items():
        if spec is None:
            continue
        pipeline = build_pipeline(spec, size, f"{where}.{name}", default_p=1.0)
        pipeline.set_random_seed(seed)
        out[str(name)] = pipeline
    return out
