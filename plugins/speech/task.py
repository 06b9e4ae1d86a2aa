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
        base = self._base()
        mel = self.mel(batch["audio"])  # (B, n_mels, T)
        hidden = self._decoder_states(base, base.encoder(mel), batch["tokens"])  # (B, L, n_text_state)
        labels = batch["labels"]  # (B, L)
        mask = labels != IGNORE
        # Project only the positions in the loss onto the 51k-token vocabulary: that projection is
        # most of a small model's compute, and padding and prompt positions need none of it.
        weight = base.decoder.token_embedding.weight  # (n_vocab, n_text_state), tied as in Whisper
        logits = hidden[mask] @ weight.to(hidden.dtype).t()  # (N, n_vocab)
        target = labels[mask]  # (N,)
        loss = F.cross_entropy(logits.float(), target)
        acc = (logits.argmax(-1) == target).float().mean()
        return {"loss": loss, "token_acc": acc.detach()}

    def _base(self) -> Whisper:
        """The Whisper module inside (the peft model's base when LoRA is on; adapters stay active)."""
        return self.model if isinstance(self.model, Whisper) else self.model.get_base_model()  # type: ignore[operator]

    @staticmethod
    def _decoder_states(model: Whisper, audio_features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Whisper's ``TextDecoder.forward`` up to its final layer norm: ``(B, L, n_text_state)``."""
        dec = model.decoder
        x = dec.token_embedding(tokens) + dec.positional_embedding[: tokens.shape[-1]]
        x = x.to(audio_features.dtype)
        for block in dec.blocks:
            x = block(x, audio_features, mask=dec.mask)
        return dec.ln(x)
