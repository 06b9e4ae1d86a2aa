"""The speech-recognition task: Whisper, its features and its loss, in one module.

Batches arrive as raw 16 kHz audio (``(B, samples)``, the model's window) with teacher-forcing
token pairs; log-mel features and SpecAugment are computed here, on the training device, in one
batched pass. The task's ``state_dict`` is the Whisper model's (plus LoRA adapters when used).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from whisper.model import ModelDimensions, Whisper

from plugins.speech.features import LogMel, SpecAugment
from plugins.speech.model import merged_whisper, num_languages, window_samples
from plugins.speech.tokens import IGNORE


class SpeechRecognitionTask(nn.Module):
    """Whisper + log-mel + SpecAugment + token cross-entropy.

    Args:
        model: A :class:`whisper.model.Whisper` or a peft model wrapping one.
        dims: The model's dimensions.
        spec_augment: Masks applied to training features, or ``None``.
        timestamps: Whether sequences carry timestamp tokens (see :mod:`plugins.speech.tokens`).
    """

    def __init__(self, model: nn.Module, dims: ModelDimensions, spec_augment: SpecAugment | None = None,
                 timestamps: bool = False) -> None:
        super().__init__()
        self.model = model
        self.dims = dims
        self.features = LogMel(dims.n_mels)
        self.spec_augment = spec_augment
        self.timestamps = timestamps
        self.window = window_samples(dims)
        self.num_languages = num_languages(dims)

    def whisper(self) -> Whisper:
        """The plain Whisper model (LoRA adapters merged into a copy when used)."""
        return merged_whisper(self.model)

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, window)`` audio -> ``(B, n_mels, 2 * n_audio_ctx)`` features (augmented in training)."""
        mel = self.features(audio)
        if self.spec_augment is not None and self.training:
            mel = self.spec_augment(mel)
        return mel

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss and token accuracy of one batch.

        Args:
            batch: ``{"audio": (B, window) float, "tokens": (B, L) int64 decoder inputs,
                "labels": (B, L) int64 next tokens, IGNORE outside the loss}``.

        Returns:
            ``{"loss": mean cross-entropy over labelled tokens, "token_acc": their accuracy}``.
        """
        mel = self.mel(batch["audio"])  # (B, n_mels, T)
        logits = self.model(mel, batch["tokens"])  # (B, L, n_vocab)
        labels = batch["labels"]  # (B, L)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        mask = labels != IGNORE
        acc = ((logits.argmax(-1) == labels) & mask).sum() / mask.sum().clamp(min=1)
        return {"loss": loss, "token_acc": acc.detach()}
