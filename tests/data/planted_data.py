"""Generators of small media with planted problems (written into tmp_path by the tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import soundfile as sf
from PIL import Image, ImageEnhance


def make_image(path: Path, seed: int, size: int = 64) -> Path:
    """A structured RGB image (coloured blocks) that perceptual hashing can tell apart."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((size, size, 3), np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, size * 3 // 4, 2)
        pixels[y : y + size // 4, x : x + size // 4] = rng.integers(0, 255, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def brightened_copy(src: Path, dst: Path) -> Path:
    """A slightly brighter, resized copy: a near duplicate."""
    with Image.open(src) as img:
        out = ImageEnhance.Brightness(img.convert("RGB")).enhance(1.15).resize((56, 56))
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.save(dst)
    return dst


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """A copy of ``src`` cut to a fraction of its bytes."""
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def make_wav(path: Path, freq: float, seconds: float = 0.5, sr: int = 16000, gain: float = 0.5) -> Path:
    """A tone with a rising second partial, so its spectrum changes over time."""
    t = np.arange(int(seconds * sr)) / sr
    wave = gain * (np.sin(2 * np.pi * freq * t) + 0.5 * np.sin(2 * np.pi * (freq * 3 + 2000 * t) * t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), sr)
    return path


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | str]) -> Path:
    """Rows as JSONL; a string row is written verbatim (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path
