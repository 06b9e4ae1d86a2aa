"""Evaluating a speech recogniser: transcripts, WER/CER figures, slices, noise robustness, CSV.

The figures are :mod:`plugins.speech.metrics`'; this module runs the model over decoded audio
(:mod:`plugins.speech.decode`, each utterance with its language token) and assembles the
:class:`~framework.evaluation.types.EvalReport`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import nn

from framework.data.records import Record
from framework.evaluation.types import EvalReport, Predictions
from plugins.speech.audio import AudioStore
from plugins.speech.dataset import add_noise, record_language
from plugins.speech.decode import transcribe
from plugins.speech.metrics import AsrScores, per_slice, score
from plugins.speech.text import TextNormalizer


def normalizer_of(cfg: Any) -> TextNormalizer:
    """The scoring normaliser of the ``modality:`` node."""
    n = cfg.normalizer
    return TextNormalizer(bool(n.lowercase), str(n.unicode_form), bool(n.remove_punctuation), bool(n.numbers))


def hypotheses(task: nn.Module, records: Sequence[Record], store: AudioStore, cfg: Any,
               audio: Sequence[np.ndarray] | None = None) -> list[str]:
    """The task's transcript of each record (``audio`` overrides the decoded samples, e.g. noisy copies)."""
    model = task.whisper()  # type: ignore[operator]
    samples = list(audio) if audio is not None else [store.get(r) for r in records]
    languages = [record_language(r, cfg.language) for r in records]
    return transcribe(model, samples, languages, beam_size=cfg.beam_size, batch_size=cfg.eval_batch_size,
                      sample_len=cfg.sample_len, fallback=cfg.fallback)


def score_split(records: Sequence[Record], hyps: Sequence[str], cfg: Any) -> AsrScores:
    """:func:`plugins.speech.metrics.score` of ``records``' transcripts against ``hyps``."""
    return score([str(r.label) for r in records], hyps, normalizer_of(cfg), dict(cfg.script_languages))


def robustness(task: nn.Module, records: Sequence[Record], store: AudioStore, cfg: Any, clean_wer: float,
               seed: int = 0) -> dict[str, dict[str, float]]:
    """WER with white noise at each SNR of ``cfg.robustness_snr_db``: ``{"snr_20db": {"wer", "increase"}}``.

    The noise is seeded per SNR, so reruns measure the same noisy audio.
    """
    out: dict[str, dict[str, float]] = {}
    for snr in cfg.robustness_snr_db:
        rng = np.random.default_rng([seed, int(round(snr * 10))])
        noisy = [add_noise(store.get(r), float(snr), rng) for r in records]
        wer = score_split(records, hypotheses(task, records, store, cfg, noisy), cfg).overall.rate
        out[f"snr_{snr:g}db"] = {"wer": wer, "increase": wer - clean_wer}
    return out


def write_hypotheses_csv(predictions: Predictions, records: Sequence[Record], languages: Sequence[str],
                         path: Path, normalizer: TextNormalizer) -> Path:
    """One row per utterance: id, language, reference, hypothesis and the utterance's own WER."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "language", "reference", "hypothesis", "wer", "audio"])
        for rid, lang, ref, hyp, rec in zip(predictions.ids, languages, predictions.targets, predictions.outputs,
                                            records):
            wer = score([ref or ""], [hyp], normalizer).overall.rate if ref else float("nan")
            writer.writerow([rid, lang, ref or "", hyp, "" if math.isnan(wer) else f"{wer:.4f}", str(rec.media)])
    return path


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def evaluation_report(task: nn.Module, records: Sequence[Record], predictions: Predictions, store: AudioStore,
                      cfg: Any, run_dir: Path, seed: int = 0) -> EvalReport:
    """The split's report: figures, per-slice WER, robustness, notes and the hypotheses CSV."""
    split = predictions.split
    norm = normalizer_of(cfg)
    refs = [str(t) for t in predictions.targets]
    scores = score_split(records, predictions.outputs, cfg)
    report = EvalReport(split=split, metrics=scores.metrics())
    report.per_slice = per_slice(refs, predictions.outputs, predictions.slices, norm)
    languages = predictions.extras.get("languages") or [record_language(r, cfg.language) for r in records]
    for lang in sorted(set(languages)):
        idx = [i for i, lg in enumerate(languages) if lg == lang]
        s = score([refs[i] for i in idx], [predictions.outputs[i] for i in idx], norm)
        report.per_slice[f"primary_language={lang}"] = {"wer": s.overall.rate, "count": float(len(idx))}
    csv_path = write_hypotheses_csv(predictions, records, languages, run_dir / "eval" / f"hypotheses_{split}.csv", norm)
    report.artifacts.append(csv_path.relative_to(run_dir))
    per_lang = ", ".join(f"{k} {_fmt(v.rate)} ({v.words} words)" for k, v in sorted(scores.per_language.items()))
    report.notes.append(f"WER {_fmt(scores.overall.rate)} over {scores.overall.words} words; per language: {per_lang}")
    if scores.code_switched_utterances:
        report.notes.append(
            f"code-switched utterances ({scores.code_switched_utterances}): WER {_fmt(scores.code_switched.rate)}; "
            f"{scores.switch_wrong} of {scores.switch_total} words at switch points wrong "
            f"({scores.switch_wrong / max(scores.switch_total, 1):.1%})")
    if cfg.eval_language == "detect":
        detected_language(report, task, records, store, cfg, run_dir, languages, scores.overall.rate)
    if cfg.robustness_snr_db:
        report.robustness = robustness(task, records, store, cfg, scores.overall.rate, seed=seed)
        for name, row in report.robustness.items():
            report.metrics[f"robust/{name}/wer"] = row["wer"]
        worst = max(report.robustness.items(), key=lambda kv: kv[1]["wer"])
        report.notes.append(f"noisiest condition `{worst[0]}`: WER {_fmt(worst[1]['wer'])} vs {_fmt(scores.overall.rate)} clean")
    return report


def detected_language(report: EvalReport, task: nn.Module, records: Sequence[Record], store: AudioStore, cfg: Any,
                      run_dir: Path, languages: Sequence[str], wer_given: float) -> None:
    """Language identification and WER under the detected language, added to ``report``
    (``modality.eval_language=detect``; see :mod:`plugins.speech.langid`)."""
    from plugins.speech import langid
    from plugins.speech.decode import transcribe

    model = task.whisper()  # type: ignore[operator]
    samples = [store.get(r) for r in records]
    detections = langid.detect_languages(model, samples, cfg.language_candidates, batch_size=cfg.eval_batch_size)
    detected = [d.language for d in detections]
    hyps = transcribe(model, samples, detected, beam_size=cfg.beam_size, batch_size=cfg.eval_batch_size,
                      sample_len=cfg.sample_len)
    wer_detected = score_split(records, hyps, cfg).overall.rate
    report.metrics.update(langid.accuracy_metrics(languages, detected))
    report.metrics["wer_detected"] = wer_detected
    norm, refs = normalizer_of(cfg), [str(r.label) for r in records]
    given = [langid.language_code(g) for g in languages]
    for lang in sorted(set(languages)):
        idx = [i for i, lg in enumerate(languages) if lg == lang]
        row = report.per_slice.setdefault(f"primary_language={lang}", {})
        row["wer_detected"] = score([refs[i] for i in idx], [hyps[i] for i in idx], norm).overall.rate
        row["language_id_accuracy"] = float(np.mean([detected[i] == given[i] for i in idx]))
    report.sections[f"Language identification (`{report.split}`)"] = langid.markdown(languages, detected, wer_given,
                                                                                      wer_detected)
    path = langid.write_csv(run_dir / "eval" / f"language_id_{report.split}.csv", [r.id for r in records], languages,
                            detections, hyps)
    report.artifacts.append(path.relative_to(run_dir))
    report.notes.append(f"language identification: {report.metrics['language_id/accuracy']:.1%} of utterances "
                        f"detected as their manifest language; WER {_fmt(wer_detected)} with the detected language "
                        f"vs {_fmt(wer_given)} with the given one")

