"""Speech without a known language: language identification from the decoder's first step, its
accuracy against the manifest's language, and WER under the detected against the given language."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from plugins.speech import langid
from plugins.speech.modality import SpeechModality


def test_accuracy_is_measured_against_the_given_language_per_language() -> None:
    metrics = langid.accuracy_metrics(["hi", "hindi", "en", "en"], ["hi", "en", "en", "en"])
    assert metrics == {"language_id/accuracy": 0.75, "language_id/en/accuracy": 1.0, "language_id/hi/accuracy": 0.5}
    text = langid.markdown(["hi", "hi", "en"], ["hi", "en", "en"], 0.2, 0.4)
    assert "| hi | 2 | 1 | 0.500 | hi 1, en 1 |" in text and "0.4000" in text


def test_an_unknown_mode_or_candidate_names_the_setting() -> None:
    with pytest.raises(FrameworkError, match="modality.eval_language='guess'"):
        langid.check_eval_language("guess", [])
    with pytest.raises(FrameworkError, match="modality.language_candidates: language 'klingon'"):
        langid.check_eval_language("detect", ["hi", "klingon"])


@pytest.mark.slow
def test_detection_chooses_among_the_candidates_with_a_probability(make_ctx, corpus) -> None:
    from plugins.speech.model import build_whisper
    from plugins.speech.modality import STORE_KEY

    ctx = make_ctx(corpus)
    data = SpeechModality().load_data(ctx)
    store = ctx.stash[STORE_KEY]
    audio = [store.get(r) for r in data.records("val")]
    model = build_whisper(ctx.model)
    two = langid.detect_languages(model, audio, ["hindi", "en"], batch_size=2)
    assert len(two) == len(audio) and {d.language for d in two} <= {"hi", "en"}
    assert all(0.5 <= d.probability <= 1.0 for d in two)  # the winner of two has at least half
    anything = langid.detect_languages(model, audio)
    assert all(0.0 < d.probability <= 1.0 for d in anything)
    assert [d.language for d in langid.detect_languages(model, audio, ["fr"])] == ["fr"] * len(audio)


@pytest.mark.slow
def test_detect_mode_reports_language_id_accuracy_and_both_wers(make_ctx, corpus) -> None:
    # Detection restricted to Hindi: the manifest's hi utterances are all right, its en ones all
    # wrong, whatever the (untrained) model hears, so the mechanics are checked exactly.
    ctx = make_ctx(corpus, modality={"eval_language": "detect", "language_candidates": ["hi"], "sample_len": 4,
                                     "robustness_snr_db": []})
    modality = SpeechModality()
    data = modality.load_data(ctx)
    task = modality.build_task(ctx, data)
    report = modality.evaluate(ctx, task, data, "val")
    given = [json.loads(line)["language"] for line in (corpus / "val.jsonl").read_text().splitlines()]
    assert report.metrics["language_id/accuracy"] == pytest.approx(given.count("hi") / len(given))
    assert report.metrics["language_id/hi/accuracy"] == 1.0
    assert {"wer", "wer_detected"} <= set(report.metrics)
    assert report.per_slice["primary_language=hi"]["language_id_accuracy"] == 1.0
    assert "wer_detected" in report.per_slice["primary_language=hi"]
    assert "| given language |" in report.sections["Language identification (`val`)"]
    rows = list(csv.DictReader((ctx.run_dir / "eval" / "language_id_val.csv").open(encoding="utf-8")))
    assert [r["given_language"] for r in rows] == given and {r["detected_language"] for r in rows} == {"hi"}
    assert Path("eval/language_id_val.csv") in report.artifacts
