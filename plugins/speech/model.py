"""Building a Whisper model from the ``model:`` node, and choosing what trains.

* ``model.name``: a released size (``tiny`` ... ``large-v3``, ``turbo``) loaded by whisper's own
  loader from ``model.download_root`` (its cache; fetched only if the machine can reach it), a
  local whisper checkpoint file (``model.name=/path/to/model.pt``, as ``whisper.load_model``
  takes), or a transformers / CTranslate2 (faster-whisper) model directory, converted name by name
  (:mod:`plugins.speech.formats`).
* ``model.dims``: a model built from ``whisper.model.ModelDimensions`` with random weights (the
  offline default; ``n_vocab`` must match the multilingual tokenizer, 51865, or 51866 with
  ``num_languages: 100``).

``model.finetune`` picks what trains: ``full``, ``decoder`` (the encoder frozen) or ``lora``
(peft LoRA adapters on the attention projections, base weights frozen);
``model.freeze_encoder_blocks`` freezes the first N encoder blocks (and the convolution stem) in
any mode. The model's window (``n_audio_ctx * 2`` mel frames) is the data's window: 30 s for the
released models.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from whisper.audio import HOP_LENGTH, SAMPLE_RATE
from whisper.model import ModelDimensions, Whisper

from framework.errors import FrameworkError
from plugins.speech.tokens import vocab_languages

log = logging.getLogger(__name__)

FINETUNE_MODES = ("full", "decoder", "lora")
LORA_TARGETS = ("query", "key", "value", "out")  # whisper's attention projections


def window_samples(dims: ModelDimensions) -> int:
    """Samples of 16 kHz audio the encoder takes: ``n_audio_ctx * 2`` mel frames (the
    convolution stem halves the frames) of ``HOP_LENGTH`` samples; 480,000 (30 s) for released models."""
    return dims.n_audio_ctx * 2 * HOP_LENGTH


def window_seconds(dims: ModelDimensions) -> float:
    """:func:`window_samples` in seconds."""
    return window_samples(dims) / SAMPLE_RATE


def num_languages(dims: ModelDimensions) -> int:
    """Languages the vocabulary holds tokens for (whisper's own rule: 99, or 100 for large-v3)."""
    return vocab_languages(dims.n_vocab)


def build_whisper(model_cfg: Any) -> Whisper:
    """The Whisper model the ``model:`` node names (see the module docstring).

    Raises:
        FrameworkError: an unknown name, an unreachable download, or dims whose vocabulary the
            multilingual tokenizer cannot use.
    """
    import whisper

    if model_cfg.name:
        name = str(model_cfg.name)
        path = Path(name).expanduser()
        if path.is_dir():
            from plugins.speech.formats import load_released

            return load_released(path)  # transformers or CTranslate2 directory, converted name by name
        if name not in whisper.available_models() and not path.is_file():
            raise FrameworkError(
                f"model.name={name!r} is neither a released Whisper model ({', '.join(whisper.available_models())}), "
                f"a local checkpoint file, nor a transformers or CTranslate2 model directory; or set model.name=null "
                f"and model.dims to build one"
            )
        if not path.is_file():
            require_downloadable(name, model_cfg.download_root)
        try:
            model = whisper.load_model(str(path) if path.is_file() else name, device="cpu",
                                       download_root=model_cfg.download_root)
        except Exception as exc:  # network errors, checksum mismatches
            raise FrameworkError(
                f"could not load Whisper {name!r}: {type(exc).__name__}: {exc}. Offline, put the checkpoint file "
                f"in model.download_root or give its path (or a transformers/CTranslate2 directory) as model.name"
            ) from None
        return model
    dims = ModelDimensions(**dict(model_cfg.dims))
    if dims.n_vocab < 51865:
        raise FrameworkError(
            f"model.dims.n_vocab={dims.n_vocab}: the multilingual tokenizer needs 51865 (99 languages) or 51866 "
            f"(100 languages, large-v3)"
        )
    torch.manual_seed(int(model_cfg.init_seed))
    return init_from_scratch(Whisper(dims))


def require_downloadable(name: str, download_root: str | None) -> None:
    """Stop at once, in one line, when the released Whisper ``name`` is neither in whisper's
    download cache (``download_root``, else ``~/.cache/whisper``) nor reachable (its URL's host
    does not accept a connection within seconds, or ``HF_HUB_OFFLINE=1``): whisper's own download
    has no timeout and may hang on a machine whose firewall drops packets.

    Raises:
        FrameworkError: naming the cache file it looked for and the local options.
    """
    import whisper

    from framework.hub import RELEASED_WEIGHTS, hub_reachable

    url = whisper._MODELS[name]  # whisper's own table of release URLs
    default_root = Path(os.getenv("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    cached = Path(download_root).expanduser() if download_root else default_root
    cached = cached / os.path.basename(url)
    if cached.is_file() or hub_reachable(url):
        return
    raise FrameworkError(
        f"model.name={name!r}: {cached} does not exist and {urlparse(url).hostname} does not answer (offline); "
        f"put the file there (or set model.download_root to its folder), or give a local checkpoint file or a "
        f"transformers/CTranslate2 Whisper directory as model.name; {RELEASED_WEIGHTS}"
    )


def init_from_scratch(model: Whisper) -> Whisper:
    """Initialise the weights whisper leaves to a loader: the decoder's positional embedding is
    allocated uninitialised (``torch.empty``) and the tied token embedding draws N(0, 1), which puts
    the first logits ~sqrt(width) apart (a loss of ~30 instead of ln(51865) = 10.9). GPT-2's
    N(0, 0.02) for tokens and N(0, 0.01) for positions start training sanely."""
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder.token_embedding.weight, std=0.02)
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    return model


def configure_training(model: Whisper, finetune: str, freeze_encoder_blocks: int = 0,
                       lora: Any = None) -> nn.Module:
    """Freeze or wrap ``model`` for the chosen fine-tuning mode; returns the module to train.

    ``lora`` carries ``r``, ``alpha``, ``dropout`` and ``target_modules`` (default: every attention
    projection). With LoRA the returned module is a peft ``PeftModel`` whose base is ``model``.
    """
    if finetune not in FINETUNE_MODES:
        raise FrameworkError(f"model.finetune={finetune!r}; choose one of {', '.join(FINETUNE_MODES)}")
    n_blocks = len(model.encoder.blocks)
    if not 0 <= freeze_encoder_blocks <= n_blocks:
        raise FrameworkError(f"model.freeze_encoder_blocks={freeze_encoder_blocks}: the encoder has {n_blocks} blocks")
    module: nn.Module = model
    if finetune == "lora":
        from peft import LoraConfig, get_peft_model

        targets = list(getattr(lora, "target_modules", None) or LORA_TARGETS)
        config = LoraConfig(r=int(lora.r), lora_alpha=int(lora.alpha), lora_dropout=float(lora.dropout),
                            target_modules=targets, bias="none")
        module = get_peft_model(model, config)
    if finetune == "decoder":
        model.encoder.requires_grad_(False)
    if freeze_encoder_blocks:
        model.encoder.conv1.requires_grad_(False)
        model.encoder.conv2.requires_grad_(False)
        for block in model.encoder.blocks[:freeze_encoder_blocks]:
            block.requires_grad_(False)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    log.info("whisper: %s fine-tuning, %.2fM of %.2fM parameters trainable", finetune, trainable / 1e6, total / 1e6)
    return module


def merged_whisper(module: nn.Module) -> Whisper:
    """A plain :class:`Whisper` with the trained weights (LoRA adapters merged into a copy)."""
    import copy

    if isinstance(module, Whisper):
        return module
    from peft import PeftModel

    if isinstance(module, PeftModel):
        return copy.deepcopy(module).merge_and_unload()  # type: ignore[return-value]
    raise TypeError(f"expected a Whisper or peft model, got {type(module).__name__}")
