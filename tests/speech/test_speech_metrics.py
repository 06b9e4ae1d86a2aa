"""WER/CER per language, on code-switched utterances and at switch points, on hand-written pairs."""

from __future__ import annotations

import math

import pytest

from plugins.speech.metrics import per_slice, score, switch_point_errors
from plugins.speech.text import TextNormalizer, is_code_switched, switch_positions, word_languages


def test_words_get_their_language_from_their_script() -> None:
    words = "कल मेरी meeting है, ok".split()
    assert word_languages(words) == ["hi", "hi", "en", "hi", "en"]
    assert switch_positions(["hi", "hi", "en", "hi", "en"]) == [2, 3, 4]
    assert is_code_switched("कल मेरी meeting है") and not is_code_switched("please call the doctor")
    assert word_languages(["123"]) == ["other"]


def test_normalizer_keeps_both_scripts() -> None:
    norm = TextNormalizer()
    assert norm("  Kal  मेरी MEETING है। ठीक?  ") == "kal मेरी meeting है ठीक"
    # NFC: a nukta typed as a combining mark equals the precomposed letter.
    assert norm("\u095b") == norm("\u091c\u093c")


def test_per_language_and_code_switched_wer_with_known_answers() -> None:
    refs = ["कल मेरी meeting है", "please call the doctor", "राम घर जा रहा है"]
    hyps = ["कल मेरा meeting है", "please call a doctor now", "राम घर जा रहा है"]
    s = score(refs, hyps).metrics()
    # Errors: 1 sub (मेरी) + 1 sub (the->a) + 1 insertion (now) = 3 over 4 + 4 + 5 = 13 words.
    assert s["wer"] == pytest.approx(3 / 13)
    # Hindi words: 3 (utt 1) + 5 (utt 3) = 8, one error; English: 1 + 4 = 5, two errors.
    assert s["wer_hi"] == pytest.approx(1 / 8)
    assert s["wer_en"] == pytest.approx(2 / 5)
    # Only utterance 1 switches: 1 error over its 4 words.
    assert s["code_switched_count"] == 1 and s["wer_code_switched"] == pytest.approx(1 / 4)
    # Its switch points: मेरी|meeting and meeting|है -> words 1, 2, 3; मेरी is wrong.
    assert s["switch_point_error_rate"] == pytest.approx(1 / 3)
    assert 0 < s["cer"] < s["wer"]


def test_switch_point_errors_count_deleted_and_substituted_neighbours() -> None:
    ref = "मुझे report कल चाहिए".split()
    langs = word_languages(ref)
    assert switch_point_errors(ref, "मुझे report कल चाहिए".split(), langs) == (0, 3)
    assert switch_point_errors(ref, "मुझे रिपोर्ट कल चाहिए".split(), langs) == (1, 3)
    assert switch_point_errors(ref, "मुझे कल चाहिए".split(), langs) == (1, 3)
    assert switch_point_errors(ref, "".split(), langs) == (3, 3)
    # Words away from the switch do not count: चाहिए wrong, no switch-point error.
    assert switch_point_errors(ref, "मुझे report कल चाहता".split(), langs) == (0, 3)


def test_language_absent_from_reference_counts_insertions_in_overall_only() -> None:
    s = score(["please call the doctor"], ["please call the doctor जी"])
    assert s.overall.insertions == 1 and s.metrics()["wer"] == pytest.approx(1 / 4)
    assert "wer_hi" not in s.metrics()  # no Hindi reference words: no Hindi WER
    assert "wer_code_switched" not in s.metrics()


def test_empty_reference_and_slices() -> None:
    s = score(["", "a b"], ["x", "a b"])
    assert s.overall.insertions == 1 and s.overall.words == 2
    slices = per_slice(["a b", "c d"], ["a b", "c x"], [{"speaker": "s1"}, {"speaker": "s2"}])
    assert slices == {"speaker=s1": {"wer": 0.0, "count": 1.0}, "speaker=s2": {"wer": 0.5, "count": 1.0}}
    assert math.isnan(score([], []).overall.rate)
