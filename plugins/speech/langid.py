"""Speech without a known language: Whisper's language identification, and WER when the decoder
must rely on it.

With ``modality.eval_language=detect`` the evaluation does not take each utterance's language
from the manifest for a second decoding: it identifies it from the audio as whisper does (one
decoder step after ``<|startoftranscript|>``, the logits restricted to the language tokens, the
most probable one wins; ``modality.language_candidates`` narrows the tokens to the languages a
deployment expects) and transcribes with the detected language token. The report then holds,
beside the usual figures under the manifest's (given) language:

* ``language_id/accuracy`` and ``language_id/<lang>/accuracy`` (per given language): how often
  the detected language is the manifest's;
* ``wer_detected``: WER of the transcripts decoded with the detected language (``wer`` stays the
  WER under the given language), and ``wer_detected`` per ``primary_language=<lang>`` slice;
* a section with, per given language, what it was detected as, and ``eval/language_id_<split>.csv``.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from whisper.model import Whisper

from plugins.speech.dataset import pad_or_trim
from plugins.speech.features import LogMel
from plugins.speech.model import window_samples
from plugins.speech.tokens import language_code, tokenizer_for

MODES = ("given", "detect")
PREFIX = "language_id/"


def check_eval_language(mode: str, candidates: Sequence[str]) -> None:
    """``modality.eval_language`` is one of :data:`MODES` and every candidate has a Whisper token.

    Raises:
        FrameworkError: naming the setting and the valid values.
    """
    from framework.errors import FrameworkError

    if mode not in MODES:
        raise FrameworkError(f"modality.eval_language={mode!r} is not one of {', '.join(MODES)}; "
                             f"detect identifies each utterance's language from the audio")
    for value in candidates:
        try:
            language_code(value)
        except ValueError as exc:
            raise FrameworkError(f"modality.language_candidates: {exc}") from None


@dataclass(frozen=True)
class Detection:
    """The detected language of one utterance and its probability among the candidates."""

    language: str
    probability: float


@torch.inference_mode()
def detect_languages(model: Whisper, audio: Sequence[np.ndarray], candidates: Sequence[str] = (),
                     batch_size: int = 32) -> list[Detection]:
    """Identify the language of each 16 kHz utterance from the decoder's first step.

    Args:
        model: A plain multilingual Whisper model; put in eval mode for the call.
        audio: 16 kHz mono utterances, padded or cut to the model's window.
        candidates: Language codes or names to choose among; empty: every language the model has.
        batch_size: Utterances per forward pass.

    Raises:
        ValueError: for a candidate Whisper has no token for.
    """
    tok = tokenizer_for(None, model.num_languages)
    codes = [language_code(c) for c in candidates] or list(tok.all_language_codes)
    token_ids = torch.tensor([tok.to_language_token(c) for c in codes])
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    features = LogMel(model.dims.n_mels).to(device)
    window = window_samples(model.dims)
    out: list[Detection] = []
    try:
        for start in range(0, len(audio), batch_size):
            chunk = audio[start: start + batch_size]
            batch = torch.from_numpy(np.stack([pad_or_trim(a, window) for a in chunk])).to(device)
            audio_features = model.embed_audio(features(batch))  # (B, frames, d)
            sot = torch.full((len(chunk), 1), tok.sot, dtype=torch.long, device=device)  # (B, 1)
            logits = model.logits(sot, audio_features)[:, 0]  # (B, vocab): the step after <|startoftranscript|>
            probs = torch.softmax(logits[:, token_ids.to(device)].float(), dim=-1).cpu()  # (B, K) over the candidates
            best = probs.argmax(dim=-1)  # (B,)
            out += [Detection(codes[int(k)], float(probs[b, k])) for b, k in enumerate(best)]
    finally:
        model.train(was_training)
    return out


def accuracy_metrics(given: Sequence[str], detected: Sequence[str]) -> dict[str, float]:
    """``language_id/accuracy`` and ``language_id/<lang>/accuracy`` per given language."""
    given = [language_code(g) for g in given]
    metrics = {f"{PREFIX}accuracy": float(np.mean([g == d for g, d in zip(given, detected)])) if given else float("nan")}
    for lang in sorted(set(given)):
        hits = [d == lang for g, d in zip(given, detected) if g == lang]
        metrics[f"{PREFIX}{lang}/accuracy"] = float(np.mean(hits))
    return metrics


def markdown(given: Sequence[str], detected: Sequence[str], wer_given: float, wer_detected: float) -> str:
    """Per given language: items, identified correctly, accuracy and what it was detected as."""
    given = [language_code(g) for g in given]
    lines = [f"WER with the manifest's language: {wer_given:.4f}; with the detected language: {wer_detected:.4f}.", "",
             "| given language | items | identified | accuracy | detected as |", "|---|---|---|---|---|"]
    for lang in sorted(set(given)):
        got = Counter(d for g, d in zip(given, detected) if g == lang)
        n = sum(got.values())
        as_text = ", ".join(f"{code} {count}" for code, count in got.most_common())
        lines.append(f"| {lang} | {n} | {got[lang]} | {got[lang] / n:.3f} | {as_text} |")
    return "\n".join(lines)


def write_csv(path: Path, ids: Sequence[str], given: Sequence[str], detections: Sequence[Detection],
              hypotheses: Sequence[str]) -> Path:
    """One row per utterance: id, given and detected language, its probability, the transcript
    decoded with the detected language."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "given_language", "detected_language", "probability", "hypothesis_detected"])
        for rid, lang, det, hyp in zip(ids, given, detections, hypotheses):
            writer.writerow([rid, language_code(lang), det.language, f"{det.probability:.4f}", hyp])
    return path
