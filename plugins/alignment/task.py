"""The alignment task: two towers, their projections, a learned temperature and the loss, in one module.

The task's ``state_dict`` is what checkpoints and exports hold. Images arrive as uint8 pixels and
are normalised here, on the device; captions arrive tokenized (``input_ids``, ``attention_mask``).
:meth:`AlignmentTask.encode_images` and :meth:`AlignmentTask.encode_texts` are the retrieval API.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plugins.alignment.loss import contrastive_loss
from framework.media.images import ImageSpec
from plugins.alignment.config import AlignmentModelConfig
from plugins.alignment.model import Towers, build_towers


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


class AlignmentTask(nn.Module):
    """A CLIP-style dual encoder with its symmetric InfoNCE loss.

    Args:
        towers: The built towers, projections, tokenizer and image spec.
        max_logit_scale: ``1 / temperature`` is clamped to at most this.
        freeze_image: Keep the image tower's weights fixed (its projection still trains).
        freeze_text: The same for the text tower.
        max_length: Captions are padded/truncated to this many tokens.
    """

    def __init__(self, towers: Towers, *, max_logit_scale: float = 100.0, freeze_image: bool = False,
                 freeze_text: bool = False, max_length: int = 32) -> None:
        super().__init__()
        self.image_encoder = towers.image
        self.text_encoder = towers.text
        self.image_proj = towers.image_proj
        self.text_proj = towers.text_proj
        self.logit_scale = nn.Parameter(torch.tensor(float(towers.logit_scale)))
        self.max_log_scale = math.log(max_logit_scale)
        self.tokenizer = towers.tokenizer
        self.spec: ImageSpec = towers.spec
        self.max_length = int(max_length)
        if freeze_image:
            _freeze(self.image_encoder)
        if freeze_text:
            _freeze(self.text_encoder)
        # Not persistent: they come from the image tower's config, so weights files hold weights only.
        self.register_buffer("mean", torch.tensor(self.spec.mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(self.spec.std).view(1, 3, 1, 1) * 255.0, persistent=False)

    # --- features ----------------------------------------------------------------------------

    def scale(self) -> torch.Tensor:
        """``1 / temperature``, clamped to ``[1, max_logit_scale]``."""
        return self.logit_scale.clamp(0.0, self.max_log_scale).exp()

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` uint8 RGB -> ``(B, D)`` L2-normalised embeddings."""
        x = (images.float() - self.mean) / self.std  # (B, 3, H, W)
        return F.normalize(self.image_proj(self.image_encoder(x)), dim=-1)

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tokenized captions ``(B, L)`` -> ``(B, D)`` L2-normalised embeddings."""
        return F.normalize(self.text_proj(self.text_encoder(input_ids, attention_mask)), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{"input_ids": (N, L), "attention_mask": (N, L)}``, padded to ``max_length``."""
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss of one batch of matched pairs (negatives from every DDP rank).

        Args:
            batch: ``{"image": (B, 3, H, W) uint8, "input_ids": (B, L), "attention_mask": (B, L)}``.

        Returns:
            ``{"loss", "loss_i2t", "loss_t2i", "acc", "logit_scale", "chance_loss"}``; ``chance_loss``
            is ln(candidates per row), the loss of features that match nothing (the engine warns
            when training sits there).
        """
        image = self.image_features(batch["image"])  # (B, D)
        text = self.text_features(batch["input_ids"], batch["attention_mask"])  # (B, D)
        scale = self.scale()
        out = contrastive_loss(image, text, scale)
        out["logit_scale"] = scale.detach()
        return out

    # --- retrieval API -----------------------------------------------------------------------

    def _device(self) -> torch.device:
        return self.logit_scale.device

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """``(N, D)`` float32 L2-normalised embeddings of ``texts``."""
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, len(texts), batch_size):
                enc = self.tokenize(texts[start:start + batch_size])
                out.append(self.text_features(enc["input_ids"].to(self._device()),
                                              enc["attention_mask"].to(self._device())).float().cpu())
        finally:
            self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, self.image_proj.out_features), dtype=np.float32)

    @torch.inference_mode()
    def encode_pixels(self, pixels: Sequence[np.ndarray] | torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """``(N, D)`` embeddings of decoded images: ``(H, W, 3)`` uint8 arrays at the input size,
        or a ``(N, 3, H, W)`` uint8 tensor."""
        if not isinstance(pixels, torch.Tensor):
            pixels = torch.from_numpy(np.stack([np.asarray(p).transpose(2, 0, 1) for p in pixels])) if len(pixels) \
                else torch.zeros(0, 3, *self.spec.size, dtype=torch.uint8)
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, pixels.shape[0], batch_size):
                chunk = pixels[start:start + batch_size].to(self._device())
                out.append(self.image_features(chunk).float().cpu())
        finally:
            self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, self.image_proj.out_features), dtype=np.float32)

    def encode_images(self, images: Sequence[Any], batch_size: int = 256, resize: str = "stretch") -> np.ndarray:
        """``(N, D)`` embeddings of image files (paths) or PIL images, decoded like training data."""
        from PIL import Image

        from framework.media.images import decode_image, resize_to

        pixels = []
        for image in images:
            if isinstance(image, Image.Image):
                pixels.append(np.asarray(resize_to(image.convert("RGB"), self.spec.size, resize), dtype=np.uint8))
            else:
                pixels.append(decode_image(image, self.spec.size, resize)[0])
        return self.encode_pixels(pixels, batch_size)


def task_from_config(cfg: AlignmentModelConfig, *, offline: bool = False) -> AlignmentTask:
    """The dual encoder of the ``model:`` node, untrained (or with its pretrained towers).

    Called by the modality's ``build_task`` and by :func:`plugins.alignment.export.load_encoder`
    when it rebuilds an exported model (``offline=True``: nothing is downloaded).
    """
    towers = build_towers(cfg, offline=offline)
    return AlignmentTask(towers, max_logit_scale=cfg.max_logit_scale, freeze_image=cfg.freeze_image,
                         freeze_text=cfg.freeze_text, max_length=cfg.text.max_length)
