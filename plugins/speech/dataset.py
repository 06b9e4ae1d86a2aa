"""Datasets the engine's loader reads: 16 kHz utterances padded to the model's window, their
decoder sequences, and optional speed/noise augmentation.

Augmentation draws from NumPy's global generator, which the engine seeds per item from
``(seed, epoch, index)``: the same item gets the same speed and noise after a resume.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from framework.data.records import Record
from framework import LoadedSample
from plugins.speech.audio import AudioStore, level_problem, load_audio, resample
from plugins.speech.tokens import collate_tokens, encode, tokenizer_for


@dataclass(frozen=True)
class WaveAugment:
    """Waveform augmentation of training utterances.

    Attributes:
        speed: ``[low, high]`` speed factors drawn uniformly (resampling: tempo and pitch change
            together, as in Kaldi's speed perturbation); ``[1, 1]`` is off.
        speed_prob: Probability of changing an utterance's speed.
        noise_snr_db: ``[low, high]`` signal-to-noise ratios of added white noise; ``[]`` is off.
        noise_prob: Probability of adding noise to an utterance.
    """

    speed: tuple[float, float] = (1.0, 1.0)
    speed_prob: float = 0.0
    noise_snr_db: tuple[float, ...] = ()
    noise_prob: float = 0.0

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        low, high = self.speed
        if self.speed_prob > 0 and high > low and np.random.random() < self.speed_prob:
            audio = change_speed(audio, float(np.random.uniform(low, high)))
        if self.noise_snr_db and self.noise_prob > 0 and np.random.random() < self.noise_prob:
            snr = float(np.random.uniform(min(self.noise_snr_db), max(self.noise_snr_db)))
            audio = add_noise(audio, snr, np.random.default_rng(np.random.randint(2**31)))
        return audio


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """``audio`` played ``factor`` times faster (linear interpolation; ``factor > 1`` shortens it)."""
    n = max(1, int(round(audio.size / factor)))
    return np.interp(np.arange(n) * factor, np.arange(audio.size), audio).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus white noise at ``snr_db`` dB below its mean power."""
    power = float(np.mean(audio.astype(np.float64) ** 2)) or 1e-10
    noise = rng.standard_normal(audio.size) * math.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def pad_or_trim(audio: np.ndarray, length: int) -> np.ndarray:
    """``audio`` cut or zero-padded to ``length`` samples (whisper's ``pad_or_trim``)."""
    if audio.size >= length:
        return audio[:length]
    return np.pad(audio, (0, length - audio.size))


def record_language(record: Record, default: str) -> str:
    """The utterance's primary language: the manifest's ``language``, else ``default``."""
    value = record.fields.get("language")
    return str(value) if value else default


def check_languages(records: Sequence[Record], default: str, where: str = "modality.language") -> None:
    """Check ``default`` and every record's ``language`` against Whisper's languages, at load.

    Called by the speech modality's ``load_data``. A language name Whisper knows (``hindi``) is
    accepted: it is read as its code (``hi``) wherever a language token is chosen.

    Raises:
        DataError: naming the record (or ``where`` for ``default``) and listing the valid codes.
    """
    from framework.data.errors import DataError
    from plugins.speech.tokens import language_code

    def code(value: str, place: str) -> str:
        try:
            return language_code(value)
        except ValueError as exc:
            raise DataError(place, str(exc), "Fix the language (a Whisper code, or a language name).") from None

    code(default, where)
    for record in records:
        value = record.fields.get("language")
        if value:
            code(str(value), record.source or record.id)


class SpeechDataset(Dataset):
    """Records as ``{"audio": (window,) float32, "sequence": [...], "prompt_length": int}`` items.

    Args:
        records: The utterances, in order (unlabeled ones get an empty transcript).
        store: Where the decoded 16 kHz audio comes from.
        window: Samples per item (the model's window).
        default_language: ``modality.language``, for records without a ``language`` field.
        augment: Waveform augmentation, or ``None``.
        timestamps: Put timestamp tokens in the sequences.
        num_languages: The vocabulary's language count (99 or 100).
    """

    def __init__(self, records: Sequence[Record], store: AudioStore, window: int, default_language: str,
                 augment: WaveAugment | None = None, timestamps: bool = False, num_languages: int = 99) -> None:
        self.records = list(records)
        self.store, self.window = store, window
        self.default_language = default_language
        self.augment, self.timestamps, self.num_languages = augment, timestamps, num_languages

    def __len__(self) -> int:
        return len(self.records)

    def language(self, i: int) -> str:
        return record_language(self.records[i], self.default_language)

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.records[i]
        text = "" if record.label is None else str(record.label)
        return utterance_item(self.store.get(record), text, self.language(i), self.window, self.augment,
                              self.timestamps, self.num_languages)


def utterance_item(audio: np.ndarray, text: str, language: str, window: int, augment: WaveAugment | None = None,
                   timestamps: bool = False, num_languages: int = 99) -> dict[str, Any]:
    """One training item from 16 kHz ``audio`` and its transcript: ``{"audio": (window,) float32,
    "sequence": [...], "prompt_length": int}`` (augmented first when ``augment`` is given)."""
    if augment is not None:
        audio = augment(audio)
    duration = min(audio.size, window) / 16000
    sequence, head = encode(text, language, duration=duration, timestamps=timestamps, num_languages=num_languages)
    return {"audio": pad_or_trim(audio, window), "sequence": sequence, "prompt_length": head}


class UtteranceDecoder:
    """Turns a shard sample (``KEY.wav``/``KEY.flac``... + ``KEY.txt`` transcript; ``KEY.json`` may
    give ``language``) into a training item as :class:`SpeechDataset` makes it: the streamed
    counterpart of that dataset (:func:`framework.train_stream`). Audio that fails to decode, is
    silent or holds NaNs, and a sample without a transcript, raise: the stream quarantines it.

    Args:
        window: Samples per item (the model's window).
        default_language: ``modality.language``, for samples without a ``language``.
        normalize_mode: ``modality.audio.normalize``.
        loudness_dbfs: ``modality.audio.loudness_dbfs``.
        augment: Waveform augmentation (draws from NumPy's generator, which the stream seeds per item).
        timestamps: Put timestamp tokens in the sequences.
        num_languages: The vocabulary's language count (99 or 100).
    """

    def __init__(self, window: int, default_language: str, normalize_mode: str = "peak", loudness_dbfs: float = -20.0,
                 augment: WaveAugment | None = None, timestamps: bool = False, num_languages: int = 99) -> None:
        self.window, self.default_language = window, default_language
        self.normalize_mode, self.loudness_dbfs = normalize_mode, loudness_dbfs
        self.augment, self.timestamps, self.num_languages = augment, timestamps, num_languages
        # The tokenizer and the resampler take seconds to load on first use: used once here, in the
        # training process, the loader workers forked from it each epoch start with them loaded.
        encode("", default_language, duration=0.0, timestamps=timestamps, num_languages=num_languages)
        resample(np.zeros(800, np.float32), 8000)

    def __call__(self, sample: LoadedSample) -> dict[str, Any]:
        ext, data = sample.media("audio")
        where = f"{sample.shard}:{sample.key}.{ext}"
        text = sample.label(audio=True)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: no transcript (KEY.txt, or 'text' in KEY.json)")
        audio, info = load_audio(io.BytesIO(data), self.normalize_mode, self.loudness_dbfs)
        problem = level_problem(info, where)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        language = str(sample.json().get("language") or self.default_language)
        return utterance_item(audio, text.strip(), language, self.window, self.augment, self.timestamps,
                              self.num_languages)


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """A batch: ``{"audio": (B, window), "tokens": (B, L), "labels": (B, L)}``."""
    pad = tokenizer_for(None).eot
    tokens, labels = collate_tokens([it["sequence"] for it in items], [it["prompt_length"] for it in items], pad)
    audio = torch.from_numpy(np.stack([it["audio"] for it in items]))
    return {"audio": audio, "tokens": tokens, "labels": labels}


class DurationBuckets(Dataset):
    """Batches of similar-duration utterances as the items of a dataset (batch size 1 for the
    engine's loader), so that shuffling, resuming and sharding work on whole batches.

    The utterances are sorted by duration and cut into batches of ``batch_size``; the engine then
    shuffles the batches each epoch. Less decoder padding per batch; useful for long transcripts.
    """

    def __init__(self, dataset: SpeechDataset, batch_size: int) -> None:
        self.dataset = dataset
        order = sorted(range(len(dataset)), key=lambda i: (_duration(dataset.records[i]), i))
        self.batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return collate([self.dataset[j] for j in self.batches[i]])


def _duration(record: Record) -> float:
    value = record.fields.get("duration")
    return float(value) if isinstance(value, (int, float)) else 0.0


def collate_bucket(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The loader's collate for :class:`DurationBuckets` (batch size 1): the batch itself."""
    return items[0]
