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
    robustness SNR, short decodes and no temperature fallback (as ``model=whisper_tiny_scratch``), on
    the corpus at ``root``. Starting from the shipped YAML also
    checks that it binds to the schemas."""
    from plugins.speech.config import SpeechConfig, SpeechModelConfig

    return run_context(CONF / "modality" / "speech.yaml", {"modality": SpeechConfig, "model": SpeechModelConfig},
                       run_dir, overrides={"modality": [{"robustness_snr_db": [10.0], "sample_len": 12,
                                                        "fallback": {"temperatures": [0.0]}},  # as the scratch config
                                                       modality or {}],
                                           "model": [TINY_MODEL, model or {}], "data": [{"root": str(root)}, data or {}]})


# --- the speech layouts people already have (tests/speech/test_speech_layouts.py) ---------------

CV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tvariant\tlocale\tsegment"
# (speaker, clip, sentence, accent) per split: three clips in train, one each in dev and test.
CV_ROWS = {
    "train": [("spk_a", "cv_0.wav", 'she said "hello"', "us"), ("spk_b", "cv_1.wav", "good morning", "uk"),
              ("spk_a", "cv_2.wav", "see you soon", "us")],
    "dev": [("spk_c", "cv_3.wav", "thank you", "in")],
    "test": [("spk_d", "cv_4.wav", "good night", "uk")],
}


def write_corpus_clip(path: Path, index: int) -> Path:
    """The ``index``-th utterance of the bundled corpus, written as a WAV by soundfile (real,
    distinct speech, so the audit's near-duplicate check passes)."""
    source = sorted((CORPUS / "audio" / "train").iterdir())[index]
    audio, rate = sf.read(str(source), dtype="float32")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate)
    return path


def write_common_voice(root: Path, rows: dict[str, list[tuple[str, str, str, str]]] | None = None) -> Path:
    """A Common Voice folder: ``<split>.tsv`` per split and short clips under ``clips/``."""
    for i, (split, lines) in enumerate((rows or CV_ROWS).items()):
        out = [CV_HEADER]
        for j, (speaker, clip, sentence, accent) in enumerate(lines):
            write_corpus_clip(root / "clips" / clip, 3 * i + j)
            out.append(f"{speaker}\t{clip}\t{sentence}\t2\t0\ttwenties\tfemale\t{accent}\t\ten\t")
        (root / f"{split}.tsv").write_text("\n".join(out) + "\n", encoding="utf-8")
    (root / "datacard.yaml").write_text("sources: [tones written by tests/speech/speech_fixtures.py]\n")
    return root


def write_kaldi(data_dir: Path, audio_dir: Path, root: Path) -> Path:
    """A Kaldi data dir: two recordings (paths relative to ``root``, as a recipe writes them),
    three segments (two cut from ``rec1``), speakers and genders."""
    write_tone(audio_dir / "rec1.wav", 2.0, 16000, freq=330.0)
    write_tone(audio_dir / "rec2.wav", 1.0, 16000, freq=520.0)
    data_dir.mkdir(parents=True, exist_ok=True)
    rel = audio_dir.relative_to(root).as_posix()
    (data_dir / "wav.scp").write_text(f"rec1 {rel}/rec1.wav\nrec2 {rel}/rec2.wav\n")
    (data_dir / "segments").write_text("u1 rec1 0.0 0.9\nu2 rec1 1.0 1.8\nu3 rec2 0.0 1.0\n")
    (data_dir / "text").write_text("u1 hello there\nu2 general kenobi\nu3 good morning\n")
    (data_dir / "utt2spk").write_text("u1 alice\nu2 bob\nu3 alice\n")
    (data_dir / "spk2gender").write_text("alice f\nbob m\n")
    return data_dir


def write_librispeech(split_dir: Path) -> Path:
    """``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with two utterances of each of two chapters."""
    for speaker, chapter in (("84", "121123"), ("174", "50561")):
        folder = split_dir / speaker / chapter
        lines = []
        for k in range(2):
            utt = f"{speaker}-{chapter}-{k:04d}"
            write_tone(folder / f"{utt}.flac", 0.5, 16000, freq=200.0 + int(speaker) + 50 * k)
            lines.append(f"{utt} WORDS OF UTTERANCE {k}")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return split_dir


def write_audio_text_folder(folder: Path, n: int = 4) -> Path:
    """``clip_<i>.wav`` with a same-named ``.txt`` transcript each."""
    for i in range(n):
        write_tone(folder / f"clip_{i}.wav", 0.5, 16000, freq=250.0 + 60 * i)
        (folder / f"clip_{i}.txt").write_text(f"utterance number {i}\n")
    return folder
