"""Building the two towers of a dual encoder from the ``model:`` node.

* image tower: any timm model by name (or ``local-dir:/path``, a folder timm saved), as a feature
  extractor (``num_classes=0``); its input size and normalisation are the model's own
  (``timm.data.resolve_data_config``); released ViT weights at another ``image_size`` load with
  their position embeddings resampled to the new patch grid (timm's checkpoint filter);
* text tower: any transformers encoder by hub name or local directory, or one built from config
  with random weights (``model.text.architecture``: a BERT by default, or e.g. CLIP's causal text
  transformer, ``clip_text_model``) over the tokenizer the project ships;
* or both from a transformers ``CLIPModel`` (``model.clip=NAME_OR_DIR``), with its projections,
  temperature, tokenizer and image normalisation.

Nothing here downloads unless the config names a hub model (or ``pretrained=true``); with
``offline=True`` (used when reloading an export) pretrained names are rebuilt from their configs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from framework.errors import FrameworkError
from framework.hub import NO_ADAPTER_LOOKUP, offline_timm_message, timm_weights_reachable
from framework.media.images import ImageSpec, local_timm_dir, timm_kwargs, timm_pretrained_cfg

log = logging.getLogger(__name__)


@dataclass
class Towers:
    """The built parts of a dual encoder, before they are put into a task."""

    image: nn.Module  # (B, 3, H, W) normalised -> (B, image_dim)
    text: nn.Module  # (input_ids, attention_mask) -> (B, text_dim)
    image_proj: nn.Module  # (B, image_dim) -> (B, embed_dim)
    text_proj: nn.Module  # (B, text_dim) -> (B, embed_dim)
    tokenizer: Any
    spec: ImageSpec
    logit_scale: float  # initial log(1 / temperature)


class TimmImageEncoder(nn.Module):
    """A timm model's pooled features."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.dim = int(model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)  # (B, dim)


#: How :class:`HFTextEncoder` pools token states: the first token, the mean of the non-padding
#: tokens, or the last non-padding token (the end-of-text token of right-padded captions: CLIP's
#: pooling, for a causal encoder whose earlier states have not seen the whole caption).
POOLINGS = ("mean", "cls", "last")


class HFTextEncoder(nn.Module):
    """A transformers encoder's token states, pooled to one vector per text (:data:`POOLINGS`)."""

    def __init__(self, model: nn.Module, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise FrameworkError(f"model.text.pooling={pooling!r}: use one of {', '.join(POOLINGS)}")
        self.model = model
        self.pooling = pooling
        self.dim = int(model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)
        if self.pooling == "cls":
            return states[:, 0]
        if self.pooling == "last":
            last = (attention_mask.sum(dim=1) - 1).clamp(min=0)  # (B,) right padding
            return states[torch.arange(states.shape[0], device=states.device), last]  # (B, H)
        mask = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, L, 1)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, H)


class ClipImageEncoder(nn.Module):
    """The vision half of a ``CLIPModel``: pooled output (before the projection)."""

    def __init__(self, vision_model: nn.Module) -> None:
        super().__init__()
        self.model = vision_model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).pooler_output  # (B, vision hidden)


class ClipTextEncoder(nn.Module):
    """The text half of a ``CLIPModel``: pooled output (the end-of-text token)."""

    def __init__(self, text_model: nn.Module) -> None:
        super().__init__()
        self.model = text_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).pooler_output  # (B, text hidden)


#: What the error for a tower that cannot be loaded offers instead of a hub name.
LOCAL_OPTIONS = ("give a local transformers directory (model.text.name=/path, or model.clip=/path), "
                 "or a hub name on a machine that can reach the hub")


def _load(what: str, source: str, loader: Any, cache_only: dict[str, Any] | None = None) -> Any:
    """``loader(source)``, a hub name from the cache first and the hub only when it answers
    (:func:`framework.hub.load_cached_first`); a failure is one line naming the local options."""
    from framework.hub import load_cached_first

    try:
        return load_cached_first(loader, source, what=what, local_options=LOCAL_OPTIONS, cache_only=cache_only)
    except (OSError, ValueError) as exc:
        raise FrameworkError(
            f"{what}={source!r} could not be loaded ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}): "
            f"{LOCAL_OPTIONS}") from None


def image_tower(cfg: Any, *, offline: bool = False) -> tuple[TimmImageEncoder, ImageSpec]:
    """The timm image tower of ``model.image`` and its input spec."""
    import timm
    from timm.data import resolve_data_config

    kwargs = timm_kwargs(cfg)
    if cfg.image_size and timm_pretrained_cfg(cfg.name, "model.image.name").get("fixed_input_size"):
        kwargs.setdefault("img_size", int(cfg.image_size))  # released ViT weights: position embeddings resampled
    pretrained = (bool(cfg.pretrained) or local_timm_dir(cfg.name) is not None) and not offline
    if cfg.checkpoint_path and not offline:
        path = Path(cfg.checkpoint_path).expanduser()
        if not path.is_file():
            raise FrameworkError(f"model.image.checkpoint_path={str(path)!r} does not exist; give a local weights file.")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        pretrained = True
    if pretrained and not cfg.checkpoint_path and local_timm_dir(cfg.name) is None and \
            not timm_weights_reachable(timm_pretrained_cfg(cfg.name, "model.image.name")):
        raise FrameworkError(offline_timm_message("model.image", cfg.name, "and the weights are not cached here"))
    try:
        model = timm.create_model(cfg.name, pretrained=pretrained, num_classes=0, **kwargs)
    except TypeError as exc:
        raise FrameworkError(f"model.image.kwargs {sorted(kwargs)} are not accepted by {cfg.name}: {exc}") from None
    args = {"input_size": (3, int(cfg.image_size), int(cfg.image_size))} if cfg.image_size else {}
    data_cfg = resolve_data_config(args, model=model)
    _, height, width = data_cfg["input_size"]
    spec = ImageSpec((int(height), int(width)), tuple(data_cfg["mean"]), tuple(data_cfg["std"]))  # type: ignore[arg-type]
    return TimmImageEncoder(model), spec


#: The tokenizer the project ships for the text tower built from config (``model.text.name=null``).
BUNDLED_TOKENIZER = Path(__file__).resolve().parent / "tokenizer"


def check_vocabulary(tokenizer: Any, model: nn.Module, what: str) -> None:
    """Refuse a tokenizer whose vocabulary does not fit ``model``'s input embedding table.

    Ids past the table crash; a vocabulary far smaller than the table (under 90% of its rows:
    tables are padded by a few rows at most) is another model's tokenizer, which trains silently
    on the wrong token rows.
    """
    rows = int(model.get_input_embeddings().num_embeddings)
    size = len(tokenizer)
    if size > rows or size < 0.9 * rows:
        raise FrameworkError(
            f"{what}: the tokenizer has {size} tokens but the encoder's embedding table has {rows} rows; "
            f"they belong to different models. Leave model.text.tokenizer=null to use the encoder's own")


def text_tower(cfg: Any, *, offline: bool = False) -> tuple[HFTextEncoder, Any]:
    """The transformers text tower of ``model.text`` and its tokenizer: ``model.text.tokenizer``,
    else the encoder's own, else (an encoder built from config) :data:`BUNDLED_TOKENIZER`."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = cfg.tokenizer or cfg.name or str(BUNDLED_TOKENIZER)
    tokenizer = _load("model.text.tokenizer", source, AutoTokenizer.from_pretrained)
    if cfg.name is None:
        model = encoder_from_config(cfg, tokenizer)
    elif offline:
        model = AutoModel.from_config(_load("model.text.name", cfg.name, AutoConfig.from_pretrained))
    else:
        model = _load("model.text.name", cfg.name, AutoModel.from_pretrained, NO_ADAPTER_LOOKUP)
    if cfg.name is not None:
        check_vocabulary(tokenizer, model, f"model.text.name={cfg.name} with model.text.tokenizer={source}")
    if cfg.lora.r > 0:
        model = with_lora(model, cfg.lora)
    return HFTextEncoder(model, cfg.pooling), tokenizer


def encoder_from_config(cfg: Any, tokenizer: Any) -> nn.Module:
    """The encoder of ``model.text.architecture`` (a transformers model type) built from
    ``model.text.config``, with random weights.

    The vocabulary, special token ids and position table come from the tokenizer and
    ``model.text.max_length`` unless ``model.text.config`` gives them; a ``vocab_size`` smaller
    than the tokenizer's is refused (its ids would fall off the table). A BERT is built without
    its pooling layer, which no pooling here reads.
    """
    from transformers import AutoConfig, AutoModel, CONFIG_MAPPING

    if cfg.architecture not in CONFIG_MAPPING:
        close = [t for t in CONFIG_MAPPING.keys() if cfg.architecture.split("_")[0] in t][:10]
        raise FrameworkError(f"model.text.architecture={cfg.architecture!r} is not a transformers model type. "
                             f"Similar: {', '.join(close) or 'none'} (e.g. bert, clip_text_model, roberta)")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    args = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, "bos_token_id": bos,
            "eos_token_id": eos, "max_position_embeddings": max(64, int(cfg.max_length)), **dict(cfg.config or {})}
    if int(args["vocab_size"]) < len(tokenizer):
        raise FrameworkError(f"model.text.config.vocab_size={args['vocab_size']} is smaller than the tokenizer's "
                             f"{len(tokenizer)} tokens ({cfg.tokenizer or BUNDLED_TOKENIZER}); leave it out or raise it")
    try:
        config = AutoConfig.for_model(cfg.architecture, **args)
    except (TypeError, ValueError) as exc:
        raise FrameworkError(f"model.text.config {sorted(args)} does not make a {cfg.architecture} config: {exc}") from None
    extra = {"add_pooling_layer": False} if cfg.architecture == "bert" else {}
    return AutoModel.from_config(config, **extra)


def with_lora(model: nn.Module, lora: Any) -> nn.Module:
    """``model`` with LoRA adapters (peft) on ``lora.target_modules``; its own weights frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(lora.r), lora_alpha=int(lora.alpha), lora_dropout=float(lora.dropout),
                        target_modules=list(lora.target_modules))
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise FrameworkError(f"model.text.lora.target_modules={list(lora.target_modules)}: {exc}") from None


def clip_image_spec(source: str, default_side: int = 224) -> ImageSpec:
    """Input size and normalisation of a ``CLIPModel`` from its image processor (no weights loaded)."""
    from transformers import CLIPImageProcessor

    processor = _load("model.clip (image processor)", source, CLIPImageProcessor.from_pretrained)
    crop = processor.crop_size or {}
    side = int(crop.get("height") or default_side)
    return ImageSpec((side, int(crop.get("width") or side)), tuple(processor.image_mean), tuple(processor.image_std))  # type: ignore[arg-type]


def clip_towers(cfg: Any, *, offline: bool = False) -> Towers:
    """Both towers, projections, temperature, tokenizer and normalisation of a ``CLIPModel``."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    if offline:
        clip = CLIPModel(_load("model.clip", cfg.clip, CLIPConfig.from_pretrained))
    else:
        clip = _load("model.clip", cfg.clip, CLIPModel.from_pretrained, NO_ADAPTER_LOOKUP)
    tokenizer = _load("model.clip (tokenizer)", cfg.text.tokenizer or cfg.clip, AutoTokenizer.from_pretrained)
    check_vocabulary(tokenizer, clip.text_model, f"model.clip={cfg.clip} with model.text.tokenizer="
                     f"{cfg.text.tokenizer or cfg.clip}")
    spec = clip_image_spec(cfg.clip, default_side=int(clip.config.vision_config.image_size))
    text: nn.Module = clip.text_model
    if cfg.text.lora.r > 0:
        text = with_lora(text, cfg.text.lora)
    return Towers(ClipImageEncoder(clip.vision_model), ClipTextEncoder(text), clip.visual_projection,
                  clip.text_projection, tokenizer, spec, float(clip.logit_scale.detach()))


def build_towers(cfg: Any, *, offline: bool = False) -> Towers:
    """The dual encoder's parts for the ``model:`` node (:class:`~plugins.alignment.config.AlignmentModelConfig`)."""
    if cfg.clip:
        return clip_towers(cfg, offline=offline)
    image, spec = image_tower(cfg.image, offline=offline)
    text, tokenizer = text_tower(cfg.text, offline=offline)
    return Towers(image, text, nn.Linear(image.dim, cfg.embed_dim, bias=False),
                  nn.Linear(text.dim, cfg.embed_dim, bias=False), tokenizer, spec,
                  math.log(1.0 / float(cfg.temperature)))


def tower_param_groups(task: nn.Module, *, lr: float, weight_decay: float, image_scale: float,
                       text_scale: float) -> list[dict[str, Any]]:
    """AdamW groups for a dual encoder: each tower at ``lr`` times its scale, the projections and
    temperature at ``lr``; weight decay only on tensors with ``ndim >= 2`` (as the engine's default)."""
    towers = {"image_encoder.": image_scale, "text_encoder.": text_scale}
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in task.named_parameters():
        if not param.requires_grad:
            continue
        scale = next((s for prefix, s in towers.items() if name.startswith(prefix)), 1.0)
        groups.setdefault((scale, param.ndim >= 2), []).append(param)
    return [{"params": params, "lr": lr * scale, "weight_decay": weight_decay if decayed else 0.0}
            for (scale, decayed), params in groups.items()]
