"""Decoding audio to what Whisper hears: 16 kHz mono float32, normalised, decoded once.

``whisper.audio`` keeps the constants (``SAMPLE_RATE`` 16 kHz, ``HOP_LENGTH`` 160, ``N_FFT``
400); they are read from there, never repeated in YAML. Files are read with soundfile (wav, flac,
ogg, mp3 through libsndfile) and, for anything libsndfile cannot open, librosa's audioread
fallback; downmixed to mono; resampled with soxr (librosa); and peak- or loudness-normalised.

:class:`AudioStore` decodes each file once, caches the 16 kHz samples within a memory budget, and
keeps what it learned about every file (:class:`AudioInfo`) for the audit checks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from whisper.audio import SAMPLE_RATE

from framework import open_media
from framework.data.probes import ProbeResult, probe_audio
from framework.data.records import Record

log = logging.getLogger(__name__)

NORMALIZE_MODES = ("peak", "loudness", "none")
SILENCE_DBFS = -60.0  # a file whose peak is below this is silent
EDGE_DBFS = -40.0  # frames quieter than this count as leading/trailing silence


@dataclass(frozen=True)
class AudioInfo:
    """What decoding a file told us (before resampling and normalisation).

    Attributes:
        samplerate: The file's sample rate.
        channels: Its number of channels.
        duration: Its length in seconds.
        peak: Largest absolute sample value (1.0 = full scale).
        clipped_fraction: Share of samples at or above 0.999 of full scale.
        lead_silence: Seconds before the first frame louder than :data:`EDGE_DBFS`.
        trail_silence: Seconds after the last such frame.
    """

    samplerate: int
    channels: int
    duration: float
    peak: float
    clipped_fraction: float
    lead_silence: float
    trail_silence: float


def read_file(path: Path | IO[bytes]) -> tuple[np.ndarray, int]:
    """``(samples (frames, channels) float32, sample rate)`` of any supported file, shard member
    or open binary file (a streamed sample's bytes)."""
    import soundfile as sf

    # a file, or a member of a tar shard (in memory)
    source = open_media(path) if isinstance(path, (str, Path)) else path
    try:
        data, rate = sf.read(str(source) if isinstance(source, Path) else source, dtype="float32", always_2d=True)
        return data, int(rate)
    except (sf.LibsndfileError, RuntimeError):
        import librosa  # audioread/ffmpeg for formats libsndfile lacks

        if not isinstance(source, Path):
            source.seek(0)
        data, rate = librosa.load(str(source) if isinstance(source, Path) else source, sr=None, mono=False)
        data = np.atleast_2d(data).T  # (frames, channels)
        return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames,)``: the mean of the channels."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(mono: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``mono`` at ``target`` Hz (soxr's high-quality resampler); unchanged when already there."""
    if rate == target:
        return mono.astype(np.float32, copy=False)
    import librosa

    return librosa.resample(mono, orig_sr=rate, target_sr=target, res_type="soxr_hq").astype(np.float32)


def normalize(mono: np.ndarray, mode: str, target_dbfs: float = -20.0) -> np.ndarray:
    """Peak normalisation to 0.9 of full scale, or RMS loudness to ``target_dbfs``; ``none`` keeps it."""
    if mode == "none" or mono.size == 0:
        return mono
    if mode == "peak":
        peak = float(np.abs(mono).max())
        return mono * (0.9 / peak) if peak > 0 else mono
    if mode == "loudness":
        rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2)))
        if rms <= 0:
            return mono
        out = mono * (10 ** (target_dbfs / 20) / rms)
        return np.clip(out, -1.0, 1.0).astype(np.float32)
    raise ValueError(f"modality.audio.normalize={mode!r}; choose one of {', '.join(NORMALIZE_MODES)}")


def _dbfs(x: float) -> float:
    return 20 * np.log10(max(x, 1e-12))


def describe(samples: np.ndarray, rate: int) -> AudioInfo:
    """The :class:`AudioInfo` of ``(frames, channels)`` samples."""
    mono = np.abs(to_mono(samples))
    frame = max(1, rate // 100)  # 10 ms frames
    n = mono.size // frame
    loud = np.flatnonzero(mono[: n * frame].reshape(n, frame).max(axis=1) > 10 ** (EDGE_DBFS / 20)) if n else []
    lead = loud[0] * frame / rate if len(loud) else mono.size / rate
    trail = (n - 1 - loud[-1]) * frame / rate if len(loud) else 0.0
    return AudioInfo(
        samplerate=rate, channels=int(samples.shape[1]) if samples.ndim == 2 else 1,
        duration=mono.size / rate if rate else 0.0, peak=float(mono.max()) if mono.size else 0.0,
        clipped_fraction=float(np.mean(np.abs(samples) >= 0.999)) if samples.size else 0.0,
        lead_silence=float(lead), trail_silence=float(trail),
    )


def load_audio(path: Path | IO[bytes], normalize_mode: str = "peak",
               loudness_dbfs: float = -20.0) -> tuple[np.ndarray, AudioInfo]:
    """A whole file (or open binary file) as 16 kHz mono float32, normalised (``loudness``: RMS to
    ``loudness_dbfs``), with what was learned about it."""
    samples, rate = read_file(Path(path) if isinstance(path, str) else path)
    info = describe(samples, rate)
    return normalize(resample(to_mono(samples), rate), normalize_mode, loudness_dbfs), info


def cut(samples: np.ndarray, offset: float | None, duration: float | None) -> np.ndarray:
    """The part of 16 kHz ``samples`` from ``offset`` seconds lasting ``duration`` seconds."""
    if offset is None and duration is None:
        return samples
    start = int(round((offset or 0.0) * SAMPLE_RATE))
    end = samples.size if duration is None else start + int(round(duration * SAMPLE_RATE))
    return samples[start:end]


class AudioStore:
    """Decoded 16 kHz audio, one decode per file, cached while the cache fits ``cache_limit_mb``.

    Its :meth:`probe` is the readers' decoding check: the decode that proves a file usable also
    resamples and caches it, and records its :class:`AudioInfo` in :attr:`info` (media path ->
    info). Silent files are refused there (reason ``silent``).

    Args:
        normalize_mode: ``peak``, ``loudness`` or ``none``.
        cache_limit_mb: Memory budget of the cache; files beyond it are decoded again when used.
        loudness_dbfs: Target RMS level of ``loudness`` normalisation.
    """

    def __init__(self, normalize_mode: str = "peak", cache_limit_mb: int = 1024, loudness_dbfs: float = -20.0) -> None:
        if normalize_mode not in NORMALIZE_MODES:
            raise ValueError(f"modality.audio.normalize={normalize_mode!r}; choose one of {', '.join(NORMALIZE_MODES)}")
        self.normalize_mode = normalize_mode
        self.loudness_dbfs = float(loudness_dbfs)
        self.limit = cache_limit_mb * 2**20
        self.info: dict[str, AudioInfo] = {}
        self._cache: dict[str, np.ndarray] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def _decode(self, path: Path) -> np.ndarray:
        samples, info = load_audio(path, self.normalize_mode, self.loudness_dbfs)
        key = str(path)
        with self._lock:
            self.info[key] = info
            if self._bytes + samples.nbytes <= self.limit and key not in self._cache:
                self._cache[key] = samples
                self._bytes += samples.nbytes
        return samples

    def file(self, path: Path) -> np.ndarray:
        """The whole file at 16 kHz (from the cache when there)."""
        cached = self._cache.get(str(path))
        return cached if cached is not None else self._decode(Path(path))

    def release(self, records: list[Record]) -> None:
        """Drop the cached samples of ``records``' files (a streamed train split's, which training
        decodes as it reads them), keeping their :attr:`info`."""
        with self._lock:
            for record in records:
                samples = self._cache.pop(str(record.media), None)
                if samples is not None:
                    self._bytes -= samples.nbytes

    def get(self, record: Record) -> np.ndarray:
        """The record's utterance at 16 kHz: its file, cut to its ``offset``/``duration`` when the
        record is a segment of a longer file."""
        if record.media is None:
            raise ValueError(f"{record.source}: record {record.id!r} has no audio file")
        samples = self.file(record.media)
        offset = record.fields.get("offset")
        if offset is None:
            return samples
        return cut(samples, float(offset), record.fields.get("duration"))

    def probe(self, path: Path) -> ProbeResult:
        """Decode ``path`` completely (truncated WAVs are refused, as by the core probe); refuse
        silent files; cache the 16 kHz samples."""
        result = probe_audio(Path(path))
        if not result.ok:
            return result
        try:
            self._decode(Path(path))
        except Exception as exc:  # resampling failures, odd formats
            return ProbeResult(False, "undecodable", f"{path}: {type(exc).__name__}: {exc}; re-export or remove it")
        info = self.info[str(path)]
        extra: dict[str, Any] = {**result.info, "peak": info.peak}
        problem = level_problem(info, str(path))
        if problem is not None:
            return ProbeResult(False, problem[0], problem[1], extra)
        return ProbeResult(True, info=extra)


def level_problem(info: AudioInfo, where: str) -> tuple[str, str] | None:
    """``(reason, detail)`` when decoded audio cannot train (NaN or infinite samples, or silent),
    else ``None``: the refusals of the loading probe, also applied to streamed samples."""
    if not np.isfinite(info.peak):
        return "non_finite", (f"{where}: the samples hold NaN or infinite values (a float WAV written from a broken "
                              "computation); re-export it or remove it")
    if _dbfs(info.peak) < SILENCE_DBFS:
        return "silent", (f"{where}: peak level {_dbfs(info.peak):.0f} dBFS, below {SILENCE_DBFS:.0f} dBFS: the file "
                          "is silent; re-record or remove it")
    return None
