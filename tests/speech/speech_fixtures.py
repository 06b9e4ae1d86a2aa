"""Helpers of the speech plugin's tests: a handful of bundled utterances, tiny Whisper dims, a fast trainer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from framework.modality import RunContext
from framework.testing import run_context
from framework.training import TrainerConfig

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "plugins" / "speech" / "conf"
CORPUS = REPO / "examples" / "data" / "speech_hien"

# One block each side, 32 wide: ~1.7M parameters, nearly all of them the 51865-token embedding.
TINY_DIMS = {"n_mels": 80, "n_audio_ctx": 160, "n_audio_state": 32, "n_audio_head": 2, "n_audio_layer": 1,
             "n_vocab": 51865, "n_text_ctx": 64, "n_text_state": 32, "n_text_head": 2, "n_text_layer": 1}
TINY_MODEL = {"name": None, "dims": TINY_DIMS}
DIM_OVERRIDES = [f"model.dims.{k}={v}" for k, v in TINY_DIMS.items()]


def copy_corpus(dst: Path, per_split: dict[str, int]) -> Path:
    """The first ``n`` utterances of each split of the bundled corpus, with their manifests, under ``dst``."""
    for split, n in per_split.items():
        lines = (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        out = []
        for line in lines:
            row = json.loads(line)
            target = dst / row["audio_filepath"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CORPUS / row["audio_filepath"], target)
            out.append(json.dumps(row, ensure_ascii=False))
        (dst / f"{split}.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
    shutil.copy(CORPUS / "datacard.yaml", dst / "datacard.yaml")  # a copy keeps its provenance
    return dst


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A sine (a different frequency per channel), ``(frames, channels)`` float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    cols = [amplitude * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def write_tone(path: Path, seconds: float, rate: int, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, rate, **kw), rate)
    return path


def trainer_config(**overrides: Any) -> TrainerConfig:
    """A fast CPU trainer config (no progress bar, every step logged)."""
    base = {"max_steps": 30, "batch_size": 4, "lr": 1e-2, "warmup_ratio": 0.1, "device": "cpu", "progress": False,
            "log_every": 1, "eval_every": 10, "clip_grad_norm": 1.0}
    return TrainerConfig(**{**base, **overrides})


def context(root: Path, run_dir: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
            data: dict[str, Any] | None = None) -> RunContext:
    """A RunContext from the shipped speech YAML plus overrides, with the tiny Whisper dims, one
    robustness SNR and short decodes, on the corpus at ``root``. Starting from the shipped YAML also
    checks that it binds to the schemas."""
    from plugins.speech.config import SpeechConfig, SpeechModelConfig

    return run_context(CONF / "modality" / "speech.yaml", {"modality": SpeechConfig, "model": SpeechModelConfig},
                       run_dir, overrides={"modality": [{"robustness_snr_db": [10.0], "sample_len": 12}, modality or {}],
                                           "model": [TINY_MODEL, model or {}], "data": [{"root": str(root)}, data or {}]})
