"""Building a timm classifier from the ``model:`` node, and what it needs from the data.

The input size, mean and std are the model's own (``timm.data.resolve_data_config``), never
repeated in YAML: ``model.image_size`` is the only knob, and only when the user wants a size other
than the architecture's default. Nothing here downloads unless ``model.pretrained=true``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from framework.errors import FrameworkError
from framework.media.images import ImageSpec, timm_kwargs

log = logging.getLogger(__name__)


def _pretrained_cfg(name: str) -> dict[str, Any]:
    import timm  # timm (and torchvision under it) load when a model is described or built

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:10]
        raise FrameworkError(
            f"model.name={name!r} is not a timm model. Similar names: {', '.join(close) or 'none'}; "
            f"see timm.list_models() for all."
        )
    cfg = timm.models.get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


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
    pretrained = bool(model_cfg.pretrained)
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
    if model_cfg.pretrained and not model_cfg.checkpoint_path and \
            not weights_reachable(_pretrained_cfg(model_cfg.name)):
        raise FrameworkError(_offline_message(model_cfg.name, "and the weights are not cached here"))


def _offline_message(name: str, why: str) -> str:
    return (f"model.name={name!r} with model.pretrained=true needs its weights from the Hugging Face hub, which "
            f"could not be reached ({why}); download them once where there is a network and give "
            "model.checkpoint_path=<file>, or set model.pretrained=false")


#: The file names timm looks for in a model's hub repository.
_HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def weights_reachable(pretrained_cfg: Any, timeout: float = 3.0) -> bool:
    """Whether ``pretrained=true`` can get its weights: cached by the hub library, or the hub (or
    the weights' URL) answering a TCP connect within ``timeout`` seconds.

    Checked before ``timm.create_model`` so that an offline machine gets one line at once instead
    of the hub client's minute of retries. ``HF_HUB_OFFLINE=1`` means cache only.
    """
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    repo = pretrained_cfg.get("hf_hub_id") if hasattr(pretrained_cfg, "get") else None
    if repo:
        repo = repo.split("@")[0]
        if any(isinstance(try_to_load_from_cache(repo, name), str) for name in _HUB_WEIGHT_FILES):
            return True
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            return False
    url = constants.ENDPOINT if repo else (pretrained_cfg.get("url") if hasattr(pretrained_cfg, "get") else "")
    parsed = urlparse(url or constants.ENDPOINT)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


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
