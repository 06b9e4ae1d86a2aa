"""Content fingerprints for duplicate search: exact hashes and 64-bit near-duplicate hashes.

* exact: SHA-1 of the media bytes, or of the normalised text for text-only records;
* images: 64-bit perceptual hash (``imagehash.phash``), robust to resizing and brightness;
* audio: a 64-bit spectral signature (8 time segments x 8 log-spaced bands of a power
  spectrogram, each bit = band energy above the median), robust to gain and resampling;
* text: 64-bit SimHash of word trigrams of the normalised text.

Near-duplicate hashes are compared by Hamming distance (see :mod:`framework.data.dedup`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from framework.data.probes import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, _wav_shortfall
from framework.data.records import Record
from framework.data.shards import MediaFile, media_bytes, open_media

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
AUDIO_SEGMENTS, AUDIO_BANDS = 8, 8  # 8 x 8 = 64 bits
AUDIO_N_FFT = 512
PHASH_SIDE = 32  # imagehash.phash: hash_size 8 x highfreq_factor 4
# What fingerprint() imports on its first call; a process pool imports them once, before forking workers.
DECODER_MODULES = ("PIL.Image", "imagehash", "scipy.fftpack", "soundfile")


@dataclass
class Fingerprint:
    """What the cleanliness gate knows about one record.

    Attributes:
        exact: Hex digest identifying identical content.
        near: 64-bit near-duplicate hash, or ``None`` when none applies.
        kind: ``image``, ``audio``, ``text`` or ``other``.
        meta: Format facts for the consistency report (image ``mode``/``format``, audio
            ``samplerate``/``channels``, file ``extension``).
        error: Why the media could not be decoded, or ``None``.
    """

    exact: str
    near: int | None
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def normalise_text(text: str) -> str:
    """Case-folded NFKC text with punctuation removed and whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def _hash64(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


def simhash(text: str) -> int:
    """64-bit SimHash of the word trigrams (or words, for short texts) of normalised text."""
    words = normalise_text(text).split()
    grams = [" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))] if words else [""]
    bits = np.array([[(_hash64(g) >> b) & 1 for b in range(64)] for g in grams])  # (G, 64)
    votes = (2 * bits - 1).sum(axis=0)
    return int(sum(1 << b for b in range(64) if votes[b] > 0))


def image_hash(path: Path | IO[bytes]) -> tuple[int, dict[str, Any]]:
    """64-bit pHash of an image (a file, a shard member or an open file) and its ``mode``/``format``/``size``."""
    import imagehash
    from PIL import Image

    with Image.open(open_media(path) if isinstance(path, (str, Path)) else path) as img:
        meta = {"mode": img.mode, "format": img.format, "size": list(img.size)}
        # pHash reads a 32 x 32 grey image: a JPEG decodes straight to grey at 1/2 to 1/8 scale in
        # the DCT (every block is still read, so a truncated file still fails), three to five times
        # faster than a full colour decode for a photo. Other formats ignore the draft.
        img.draft("L", (PHASH_SIDE * 2, PHASH_SIDE * 2))
        img.load()
        bits = imagehash.phash(img).hash.reshape(-1)  # 64 booleans, most significant first
        return int.from_bytes(np.packbits(bits).tobytes(), "big"), meta  # int(str(hash), 16), without the hex string


def audio_signature(path: Path, segment: tuple[float, float | None] | None = None) -> tuple[int, dict[str, Any]]:
    """64-bit spectral signature of an audio file (or of its ``(offset, duration)`` segment, in
    seconds) and its ``samplerate``/``channels``.

    Raises:
        ValueError: for a truncated WAV or a file with no frames.
    """
    import soundfile as sf

    if Path(path).suffix.lower() == ".wav" and _wav_shortfall(Path(path)):
        raise ValueError("WAV data chunk shorter than its header says (truncated)")
    source = open_media(path)
    data, sr = sf.read(str(source) if isinstance(source, Path) else source, always_2d=True, dtype="float32")
    meta = {"samplerate": sr, "channels": data.shape[1]}
    if segment is not None:
        start = int(segment[0] * sr)
        data = data[start : None if segment[1] is None else start + int(segment[1] * sr)]
    mono = data.mean(axis=1)
    if mono.size == 0:
        raise ValueError("no audio frames")
    return _spectral_bits(mono, sr), meta


def _spectral_bits(mono: np.ndarray, sr: int) -> int:
    n_fft = AUDIO_N_FFT
    if mono.size < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.size))
    hop = n_fft // 2
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]  # (T, n_fft)
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2  # (T, n_fft/2+1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    # Bands in Hz (not bins) so the same sound at another sample rate lands in the same bands.
    edges = np.geomspace(100.0, min(sr / 2, 8000.0), AUDIO_BANDS + 1)
    band_of = np.clip(np.searchsorted(edges, freqs) - 1, -1, AUDIO_BANDS)
    seg_of = np.minimum(np.arange(power.shape[0]) * AUDIO_SEGMENTS // max(power.shape[0], 1), AUDIO_SEGMENTS - 1)
    grid = np.zeros((AUDIO_SEGMENTS, AUDIO_BANDS))  # (segments, bands) energy
    for b in range(AUDIO_BANDS):
        band_power = power[:, band_of == b].sum(axis=1)  # (T,)
        np.add.at(grid[:, b], seg_of, band_power)
    log = np.log(grid + 1e-10).ravel()
    bits = log > np.median(log)
    return int(sum(1 << i for i in range(64) if bits[i]))


def record_text(record: Record) -> str:
    """The text that identifies a text-only record (preference pairs include both answers)."""
    parts = [record.text or ""]
    for key in ("chosen", "rejected"):
        if key in record.fields:
            parts.append(str(record.fields[key]))
    return "\n".join(parts)


def _fields_fingerprint(record: Record) -> Fingerprint:
    """Records with neither media nor text (tabular rows, tasks whose image is a URL) are the same
    item when every field but the id and the label is the same."""
    content = {k: v for k, v in record.fields.items() if k not in ("id", "label")}
    if not content:
        return Fingerprint(f"id:{record.id}", None, "none")
    digest = hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return Fingerprint(digest, None, "fields")


def _segment(record: Record) -> tuple[float, float | None] | None:
    """``(offset, duration)`` in seconds when the record is a segment of a longer audio file."""
    offset = record.fields.get("offset")
    if not isinstance(offset, (int, float)) or isinstance(offset, bool):
        return None
    duration = record.fields.get("duration")
    return float(offset), float(duration) if isinstance(duration, (int, float)) else None


def fingerprint(record: Record) -> Fingerprint:
    """Fingerprint one record; decoding errors are captured in ``error``, never raised.

    A segment of a longer audio file (``offset``/``duration`` fields, as in NeMo manifests) is
    fingerprinted on its own samples, so segments of one recording are not duplicates of each other.
    """
    if record.media is None:
        text = record_text(record)
        if not text.strip():
            return _fields_fingerprint(record)
        digest = hashlib.sha1(normalise_text(text).encode()).hexdigest()
        return Fingerprint(digest, simhash(text), "text")
    path = Path(record.media)
    suffix = path.suffix.lower()
    try:
        content = media_bytes(path)  # a file, or a member of a tar shard
        digest = hashlib.sha1(content).hexdigest()
    except OSError as exc:
        return Fingerprint("", None, "other", {"extension": suffix}, f"cannot read: {exc}")
    kind = "image" if suffix in IMAGE_EXTENSIONS else "audio" if suffix in AUDIO_EXTENSIONS else "other"
    segment = _segment(record) if kind == "audio" else None
    if segment is not None:
        digest = hashlib.sha1(f"{digest}@{segment[0]:g}+{segment[1]}".encode()).hexdigest()
    try:
        near, meta = image_hash(MediaFile(content, path)) if kind == "image" else audio_signature(path, segment) if kind == "audio" else (None, {})
    except Exception as exc:  # any decoder failure means the file is unusable
        return Fingerprint(digest, None, kind, {"extension": suffix}, f"{type(exc).__name__}: {exc}")
    return Fingerprint(digest, near, kind, {**meta, "extension": suffix})
