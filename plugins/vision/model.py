"""Building a timm classifier from the ``model:`` node, and what it needs from the data.

The input size, mean and std are the model's own (``timm.data.resolve_data_config``), never
repeated in YAML: ``model.image_size`` is the only knob, and only when the user wants a size other
than the architecture's default. Nothing here downloads unless ``model.pretrained=true``.

Released weights load from the hub (``pretrained=true``), a local file (``model.checkpoint_path``)
or a timm folder (``model.name=local-dir:/path``); at an ``image_size`` other than the one they
were trained at, timm's checkpoint filter resamples a ViT's position embeddings to the new patch
grid (bicubic, the class token's kept), so the weights load at any size the patches divide.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from framework.errors import FrameworkError
from framework.hub import offline_timm_message, timm_weights_reachable
from framework.media.images import ImageSpec, local_timm_dir, timm_kwargs, timm_pretrained_cfg

log = logging.getLogger(__name__)


def _pretrained_cfg(name: str) -> dict[str, Any]:
    return timm_pretrained_cfg(name, "model.name")


def input_spec(model_cfg: Any) -> ImageSpec:
    """The input size and normalisation of the configured model, without building it."""
    pretrained_cfg = _pretrained_cfg(model_cfg.name)
    args: dict[str, Any] = {}
    if model_cfg.image_size:
        args["input_size"] = (3, int(model_cfg.image_size), int(model_cfg.image_size))
    from timm.data import resolve_data_config

    data_cfg = resolve_data_config(args, pretrained_cfg=pretrained_cfg)
    _, height, width = data_cfg["input_size"]
    return ImageSpec((int(height), int(width)), tuple(data_cfg["mean"]), tuple(data_cfg["std"]))  # type: ignore[arg-type]


def build_model(model_cfg: Any, num_classes: int) -> torch.nn.Module:
    """A timm classifier with a ``num_classes``-way head.

    Args:
        model_cfg: The ``model:`` node (:class:`plugins.vision.config.VisionModelConfig`).
        num_classes: Number of classes of the data set; the head is built (or replaced) to match.

    Raises:
        FrameworkError: unknown model name, or a checkpoint file that does not exist.
    """
    import timm

    pretrained_cfg = _pretrained_cfg(model_cfg.name)
    kwargs = timm_kwargs(model_cfg)
    # Architectures with position embeddings (ViT, Swin) fix their input size at construction.
    if model_cfg.image_size and pretrained_cfg.get("fixed_input_size"):
        kwargs.setdefault("img_size", int(model_cfg.image_size))
    # Only passed when set: not every architecture accepts them.
    if model_cfg.drop_rate:
        kwargs.setdefault("drop_rate", float(model_cfg.drop_rate))
    if model_cfg.drop_path_rate:
        kwargs.setdefault("drop_path_rate", float(model_cfg.drop_path_rate))
    pretrained = bool(model_cfg.pretrained) or local_timm_dir(model_cfg.name) is not None  # a folder: its weights
    if model_cfg.checkpoint_path:
        path = Path(model_cfg.checkpoint_path).expanduser()
        if not path.is_file():
            raise FrameworkError(f"model.checkpoint_path={str(path)!r} does not exist; give a local weights file.")
        # timm's own loader then adapts the head (and position embeddings) to this model.
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        pretrained = True
    require_reachable_weights(model_cfg)
    try:
        return timm.create_model(
            model_cfg.name,
            pretrained=pretrained,
            num_classes=num_classes,
            **kwargs,
        )
    except TypeError as exc:
        raise FrameworkError(
            f"model.kwargs {sorted(kwargs)} are not accepted by {model_cfg.name}: {exc}. "
            f"Remove the argument or choose another model."
        ) from None
    except Exception as exc:  # noqa: BLE001 - only a failed weights download is reworded; the rest re-raised
        if pretrained and not model_cfg.checkpoint_path and _is_download_failure(exc):
            raise FrameworkError(_offline_message(model_cfg.name, type(exc).__name__)) from None
        raise


def require_reachable_weights(model_cfg: Any) -> None:
    """With ``model.pretrained=true`` and no ``model.checkpoint_path``: one line at once, naming
    ``model.checkpoint_path``, when the weights are neither cached nor reachable. The vision
    modality calls it before reading the data, so an offline machine hears it before the audit."""
    if model_cfg.pretrained and not model_cfg.checkpoint_path and local_timm_dir(model_cfg.name) is None and \
            not timm_weights_reachable(_pretrained_cfg(model_cfg.name)):
        raise FrameworkError(_offline_message(model_cfg.name, "and the weights are not cached here"))


def _offline_message(name: str, why: str) -> str:
    return offline_timm_message("model", name, why)


def _is_download_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a hub or network failure rather than a bug."""
    seen: BaseException | None = exc
    while seen is not None:
        module = type(seen).__module__ or ""
        if module.startswith(("huggingface_hub", "requests", "urllib3", "httpx", "socket")) or isinstance(
                seen, (ConnectionError, TimeoutError)):
            return True
        if isinstance(seen, OSError) and any(w in str(seen) for w in ("connect", "offline", "huggingface.co")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
