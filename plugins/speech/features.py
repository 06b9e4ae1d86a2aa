"""Log-mel features on the training device, in batches, and SpecAugment.

Whisper's ``log_mel_spectrogram`` clamps each spectrogram to 8 dB (80 dB in log10 units x 10)
below its maximum, but over a batch it takes the batch's maximum; :func:`log_mel` takes each
utterance's own, so a batch gives exactly what one-at-a-time would.
"""

from __future__ import annotations

import torch
from torch import nn
from whisper.audio import HOP_LENGTH, N_FFT, mel_filters


class LogMel(nn.Module):
    """``(B, samples)`` 16 kHz audio -> ``(B, n_mels, samples // HOP_LENGTH)`` Whisper log-mel.

    Args:
        n_mels: 80 or 128, as the model was built (``dims.n_mels``).
    """

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        if n_mels not in (80, 128):
            raise ValueError(f"Whisper's mel filters come in 80 or 128 bins, not {n_mels}")
        self.n_mels = n_mels
        # Not persistent: they are constants of whisper.audio, not weights.
        self.register_buffer("filters", mel_filters("cpu", n_mels), persistent=False)  # (n_mels, N_FFT//2+1)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        stft = torch.stft(audio.float(), N_FFT, HOP_LENGTH, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # (B, N_FFT//2+1, T)
        mel = self.filters @ power  # (B, n_mels, T)
        log_spec = torch.clamp(mel, min=1e-10).log10()
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)  # (B, 1, 1): each utterance's own maximum
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0


class SpecAugment(nn.Module):
    """Frequency and time masks (Park et al. 2019), drawn per utterance, in training only.

    Each of ``freq_masks`` masks covers ``[0, freq_width)`` consecutive mel bins, each of
    ``time_masks`` masks ``[0, time_width)`` consecutive frames (at most ``max_time_fraction`` of
    the frames), with widths and positions uniform per utterance (``torchaudio``'s
    ``mask_along_axis_iid``). Masked values are set to the utterance's mean, so a mask carries no
    energy cue. Zero masks or zero widths switch it off.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 27, time_masks: int = 2, time_width: int = 40,
                 max_time_fraction: float = 1.0) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.max_time_fraction = max_time_fraction

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as AF

        width = min(self.time_width, int(self.max_time_fraction * mel.shape[-1]))
        n_freq = self.freq_masks if self.freq_width > 0 else 0
        n_time = self.time_masks if width > 0 else 0
        if not self.training or not (n_freq or n_time):
            return mel
        keep = torch.ones(mel.shape[0], 1, *mel.shape[1:], device=mel.device, dtype=mel.dtype)  # (B, 1, n_mels, T)
        for _ in range(n_freq):
            keep = AF.mask_along_axis_iid(keep, self.freq_width, 0.0, axis=2)
        for _ in range(n_time):
            keep = AF.mask_along_axis_iid(keep, width, 0.0, axis=3)
        mean = mel.mean(dim=(-2, -1), keepdim=True)  # (B, 1, 1)
        return torch.where(keep.squeeze(1) > 0, mel, mean)
