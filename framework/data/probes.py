"""Decoding checks for media files, reusable by readers, gates and modalities.

A probe opens a file the way training will, and says whether it can be used. Readers can run a
probe on every media file while loading (``load_bundle(..., decoder_check=probe_image)``) so that
corrupt files are quarantined before anything else sees them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from framework.data.shards import media_is_file, open_media

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif"})


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found.

    Attributes:
        ok: The file decodes completely.
        reason: ``""`` when ok, else ``missing_file`` or ``undecodable``.
        detail: Human-readable explanation with the fix, when not ok.
        info: What was learned (``mode``/``size``/``format`` for images; ``samplerate``,
            ``channels``, ``frames``, ``duration`` for audio).
    """

    ok: bool
    reason: str = ""
    detail: str = ""
    info: dict[str, Any] = field(default_factory=dict)


Probe = Callable[[Path], ProbeResult]


def _missing(path: Path) -> ProbeResult:
    return ProbeResult(False, "missing_file", f"{path} does not exist; fix the path or restore the file")


def probe_image(path: Path) -> ProbeResult:
    """Open, verify and fully decode an image with Pillow.

    ``verify()`` catches broken structure, but not truncated pixel data, so the image is also
    loaded (on a fresh handle: Pillow cannot load after verify).
    """
    from PIL import Image

    path = Path(path)
    if not media_is_file(path):
        return _missing(path)
    try:
        with Image.open(open_media(path)) as img:
            img.verify()
        with Image.open(open_media(path)) as img:
            img.load()
            info = {"mode": img.mode, "size": list(img.size), "format": img.format}
    except Exception as exc:  # Pillow raises many types for bad files
        return ProbeResult(False, "undecodable", f"{path}: {type(exc).__name__}: {exc}; re-export or remove it")
    return ProbeResult(True, info=info)


def _wav_shortfall(path: Path) -> int:
    """Bytes missing from a WAV file's data chunk (0 when complete or not a RIFF WAV).

    libsndfile quietly reads a truncated WAV as a shorter one, so the header's declared data size
    is compared with what the file holds.
    """
    source = open_media(path)
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return _wav_shortfall_of(fh, source.stat().st_size)
    return _wav_shortfall_of(source, len(source.getbuffer()))


def _wav_shortfall_of(fh: Any, size: int) -> int:
    """The shortfall of an open WAV file of ``size`` bytes (see :func:`_wav_shortfall`)."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if chunk_id == b"data":
            return max(0, pos + 8 + chunk_size - size)
        pos += 8 + chunk_size + (chunk_size & 1)
    return 0


def probe_audio(path: Path) -> ProbeResult:
    """Read an audio file completely with soundfile; a truncated WAV is reported undecodable."""
    import soundfile as sf

    path = Path(path)
    if not media_is_file(path):
        return _missing(path)
    try:
        meta = sf.info(_sf_source(path))
        data, _ = sf.read(_sf_source(path), always_2d=True)
        shortfall = _wav_shortfall(path) if path.suffix.lower() == ".wav" else 0
    except Exception as exc:
        return ProbeResult(False, "undecodable", f"{path}: {type(exc).__name__}: {exc}; re-export or remove it")
    info = {
        "samplerate": meta.samplerate,
        "channels": meta.channels,
        "frames": int(data.shape[0]),
        "duration": data.shape[0] / meta.samplerate if meta.samplerate else 0.0,
        "format": meta.format,
    }
    if shortfall:
        detail = f"{path}: WAV data chunk is {shortfall} bytes shorter than its header says (truncated copy?)"
        return ProbeResult(False, "undecodable", detail + "; copy the file again", info)
    if data.shape[0] == 0:
        return ProbeResult(False, "undecodable", f"{path}: no audio frames; re-export or remove it", info)
    return ProbeResult(True, info=info)


def probe_for(path: Path) -> Probe | None:
    """The probe that fits a file's extension, or ``None`` for other files."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return probe_image
    if suffix in AUDIO_EXTENSIONS:
        return probe_audio
    return None


def probe_media(path: Path) -> ProbeResult:
    """Probe by extension; files of other kinds only need to exist."""
    probe = probe_for(path)
    if probe is not None:
        return probe(path)
    return ProbeResult(True) if media_is_file(path) else _missing(Path(path))


def _sf_source(path: Path) -> Any:
    """What soundfile reads: the path as a string, or a shard member's bytes as a file."""
    source = open_media(path)
    return str(source) if isinstance(source, Path) else source
