"""The image-classification task: a timm model, its input normalisation and its loss, in one module.

The task's ``state_dict`` is what checkpoints and exports hold. Batches arrive as uint8 pixels
(four times less to copy to the device than floats) and are normalised here, on the device.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from framework import CHANCE_LOSS
from framework.media.images import ImageSpec

if TYPE_CHECKING:
    from timm.data import Mixup


class ImageClassificationTask(nn.Module):
    """Model + loss for single-label image classification.

    Args:
        model: A classifier mapping ``(B, 3, H, W)`` normalised images to ``(B, C)`` logits.
        classes: Class names, in logit order.
        spec: The model's input size and normalisation.
        label_smoothing: Label smoothing of the cross-entropy (folded into mixed targets).
        mixup: A ``timm.data.Mixup`` applied to training batches, or ``None``.
        channels_last: Feed channels-last tensors on CUDA (the engine converts the weights).

    Attributes:
        temperature: Served probabilities are ``softmax(logits / temperature)``; 1.0 while
            training, the calibration temperature of the export once loaded from one.
    """

    def __init__(
        self,
        model: nn.Module,
        classes: list[str],
        spec: ImageSpec,
        label_smoothing: float = 0.0,
        mixup: Mixup | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.classes = list(classes)
        self.spec = spec
        self.label_smoothing = label_smoothing
        self.mixup = mixup
        self.channels_last = channels_last
        self.temperature = 1.0
        from timm.loss import SoftTargetCrossEntropy

        self.soft_loss = SoftTargetCrossEntropy()
        # Not persistent: they come from the model's config, so weights files hold weights only.
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0, persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` uint8 RGB (or float on the 0-255 scale) -> normalised float."""
        x = (images.float() - self.mean) / self.std  # (B, 3, H, W)
        if self.channels_last and x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, C)`` of ``(B, 3, H, W)`` uint8 RGB images."""
        return self.model(self.normalize(images))

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss and accuracy of one labeled batch.

        Args:
            batch: ``{"image": (B, 3, H, W) uint8, "target": (B,) int64 class indices}``.

        Returns:
            ``{"loss": scalar, "acc": scalar, "chance_loss": ln(classes)}``; under mixup ``acc``
            compares with the unmixed targets, so it reads lower than the accuracy of clean
            images; ``chance_loss`` is the uniform guess's loss (the engine warns when training
            sits there).
        """
        x = self.normalize(batch["image"])  # (B, 3, H, W)
        target = batch["target"]  # (B,)
        if self.training and self.mixup is not None and x.shape[0] % 2 == 0:
            x_mixed, soft_target = self.mixup(x, target)  # soft_target: (B, C)
            logits = self.model(x_mixed)
            loss = self.soft_loss(logits, soft_target)
        else:
            logits = self.model(x)  # (B, C)
            loss = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing if self.training else 0.0)
        acc = (logits.argmax(dim=-1) == target).float().mean()
        return {"loss": loss, "acc": acc.detach(), CHANCE_LOSS: math.log(logits.shape[-1])}
