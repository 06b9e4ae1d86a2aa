"""Transcribing a folder of audio files with a trained model, to a CSV.

From Python::

    from plugins.speech.transcribe import transcribe_folder
    transcribe_folder("outputs/speech/<run>/export", "recordings/", "transcripts.csv", language="hi")

From the shell::

    python -m plugins.speech.transcribe outputs/speech/<run>/export recordings/ transcripts.csv [--language hi]

``source`` is an export directory (read with ``whisper.load_model``) or a checkpoint directory of
a speech run. Every file is decoded to 16 kHz mono as in training; a file longer than the model's
window is cut into consecutive windows whose transcripts are joined. Files that cannot be decoded
get a row with the reason in ``error`` instead of stopping the batch.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from framework.data.probes import AUDIO_EXTENSIONS
from framework.errors import FrameworkError
from plugins.speech.audio import AudioStore
from plugins.speech.config import FallbackConfig
from plugins.speech.decode import NO_FALLBACK, transcribe
from plugins.speech.export import load_task


def audio_files(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursively, hidden files skipped), sorted."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))


def transcribe_folder(
    source: str | Path,
    folder: str | Path,
    out_csv: str | Path,
    language: str | None = None,
    *,
    beam_size: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> Path:
    """Transcribe every audio file under ``folder`` and write ``out_csv``.

    Args:
        source: An export directory (``run_dir/export``) or a checkpoint directory.
        folder: The recordings (searched recursively).
        out_csv: The CSV to write: ``path, language, duration, text, error``; ``path`` is relative
            to ``folder``.
        language: Language token of the decoder prompt; ``None`` uses the run's ``modality.language``.
        beam_size: ``None`` uses the run's; 0/1 greedy, more for beam search.
        batch_size: Decoder batch size.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.

    Raises:
        FrameworkError: when ``folder`` holds no audio or ``source`` is not a speech export.
    """
    folder, out_csv = Path(folder), Path(out_csv)
    files = audio_files(folder)
    if not files:
        raise FrameworkError(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    task, info = load_task(Path(source), device)
    model = task.whisper()
    lang = language or info.language
    store = AudioStore(str(info.audio.get("normalize", "peak")), cache_limit_mb=512,
                       loudness_dbfs=float(info.audio.get("loudness_dbfs", -20.0)))
    chunks, owners, errors, durations = [], [], {}, {}
    for path in files:
        rel = path.relative_to(folder).as_posix()
        probe = store.probe(path)
        if not probe.ok:
            errors[rel] = probe.detail
            continue
        samples = store.file(path)
        durations[rel] = samples.size / 16000
        for start in range(0, max(samples.size, 1), task.window):
            chunks.append(samples[start : start + task.window])
            owners.append(rel)
    texts = transcribe(model, chunks, [lang] * len(chunks), beam_size=info.beam_size if beam_size is None else beam_size,
                       batch_size=batch_size, sample_len=info.sample_len,
                       fallback=FallbackConfig(**info.fallback) if info.fallback else NO_FALLBACK)
    joined: dict[str, list[str]] = {}
    for rel, text in zip(owners, texts):
        joined.setdefault(rel, []).append(text)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "language", "duration", "text", "error"])
        for path in files:
            rel = path.relative_to(folder).as_posix()
            if rel in errors:
                writer.writerow([rel, lang, "", "", errors[rel]])
            else:
                writer.writerow([rel, lang, f"{durations[rel]:.3f}", " ".join(t for t in joined[rel] if t), ""])
    return out_csv


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m plugins.speech.transcribe SOURCE FOLDER OUT_CSV [--language L]``."""
    parser = argparse.ArgumentParser(description="Transcribe a folder of audio files with a trained speech model.")
    parser.add_argument("source", type=Path, help="export directory or checkpoint directory of a speech run")
    parser.add_argument("folder", type=Path, help="folder of audio files (searched recursively)")
    parser.add_argument("out_csv", type=Path, help="CSV file to write")
    parser.add_argument("--language", default=None, help="language token of the prompt (default: the run's)")
    parser.add_argument("--beam-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        out = transcribe_folder(args.source, args.folder, args.out_csv, args.language, beam_size=args.beam_size,
                                batch_size=args.batch_size, device=args.device)
    except FrameworkError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
