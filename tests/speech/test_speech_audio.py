"""Decoding to 16 kHz mono, SpecAugment widths, SRT/VTT segmentation, bad files quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from framework.data.readers import read_manifest
from plugins.speech.audio import AudioStore, load_audio
from plugins.speech.features import SpecAugment
from plugins.speech.modality import STORE_KEY, SpeechModality
from plugins.speech.segments import Cue, group_cues, parse_cues
from speech_fixtures import tone, write_manifest, write_tone


@pytest.mark.slow
def test_44k_stereo_arrives_as_16k_mono_of_the_same_duration(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "stereo.wav", 1.5, 44100, freq=220.0, channels=2)
    samples, info = load_audio(path, normalize_mode="none")
    assert samples.ndim == 1 and samples.dtype == np.float32
    assert samples.size == 24000  # 1.5 s at 16 kHz
    assert (info.samplerate, info.channels) == (44100, 2) and info.duration == pytest.approx(1.5)
    # Mono is the mean of the channels: a 220 Hz and a 440 Hz sine, each of amplitude 0.5.
    expected = tone(1.5, 16000, freq=220.0, channels=2).mean(axis=1)
    assert np.abs(samples[200:-200] - expected[200:-200]).max() < 0.02
    peak, _ = load_audio(path, normalize_mode="peak")
    assert np.abs(peak).max() == pytest.approx(0.9, abs=1e-3)


@pytest.mark.parametrize(("suffix", "fmt", "subtype"), [
    ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III"),
])
def test_compressed_formats_arrive_as_16k_mono_with_their_content(tmp_path: Path, suffix: str, fmt: str,
                                                                   subtype: str) -> None:
    path = tmp_path / f"clip.{suffix}"
    sf.write(str(path), tone(2.0, 22050, freq=330.0, channels=2), 22050, format=fmt, subtype=subtype)
    samples, info = load_audio(path, normalize_mode="none")
    assert samples.ndim == 1 and samples.dtype == np.float32
    assert (info.samplerate, info.channels) == (22050, 2)
    assert samples.size / 16000 == pytest.approx(2.0, abs=0.06)  # mp3 frames pad the end a little
    # The mono mix holds both channels' sines (330 and 660 Hz), each at half their amplitude.
    spectrum = np.abs(np.fft.rfft(samples[:16000])) / 8000
    freqs = np.fft.rfftfreq(16000, 1 / 16000)
    top = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert top == pytest.approx([330.0, 660.0], abs=2.0)
    assert spectrum[np.argsort(spectrum)[-2:]] == pytest.approx([0.25, 0.25], abs=0.03)


@pytest.mark.parametrize("target", [-20.0, -30.0])
def test_loudness_normalisation_brings_the_rms_to_the_configured_level(tmp_path: Path, target: float) -> None:
    quiet = write_tone(tmp_path / "quiet.wav", 1.0, 16000, amplitude=0.01)
    samples, _ = load_audio(quiet, normalize_mode="loudness", loudness_dbfs=target)
    assert 20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) == pytest.approx(target, abs=0.05)
    # The store the modality builds from modality.audio applies the same level.
    store = AudioStore("loudness", loudness_dbfs=target)
    assert np.allclose(store.file(quiet), samples)


def test_spec_augment_masks_the_configured_widths() -> None:
    torch.manual_seed(0)
    mel = torch.randn(200, 80, 300)
    aug = SpecAugment(freq_masks=1, freq_width=10, time_masks=1, time_width=20, max_time_fraction=1.0).train()
    out = aug(mel)
    mean = mel.mean(dim=(1, 2), keepdim=True)
    masked = torch.isclose(out, mean.expand_as(out), atol=1e-6) & ~torch.isclose(mel, mean.expand_as(mel), atol=1e-6)
    freq_rows = masked.all(dim=2)  # (B, 80): whole mel bins masked
    time_cols = masked.all(dim=1)  # (B, 300): whole frames masked
    freq_widths, time_widths = freq_rows.sum(dim=1), time_cols.sum(dim=1)
    assert int(freq_widths.max()) <= 9 and int(time_widths.max()) <= 19  # widths drawn from [0, width)
    assert int(freq_widths.max()) >= 8 and int(time_widths.max()) >= 17  # and the full range is used
    for row in freq_rows:  # one contiguous band per utterance
        idx = torch.nonzero(row).flatten()
        assert idx.numel() == 0 or int(idx[-1] - idx[0]) + 1 == idx.numel()
    # Evaluation never masks; zero widths switch it off.
    assert torch.equal(aug.eval()(mel), mel)
    assert torch.equal(SpecAugment(0, 0, 0, 0).train()(mel), mel)
    # The time fraction caps the width: 300 frames * 0.02 = at most 5 frames.
    capped = SpecAugment(0, 0, 1, 100, max_time_fraction=0.02).train()(mel)
    assert int((capped != mel).all(dim=1).sum(dim=1).max()) <= 5


SRT = """1
00:00:00,500 --> 00:00:12,000
<i>first</i> cue

2
00:00:12,500 --> 00:00:25,000
second cue
continued

3
00:00:26,000 --> 00:00:40,000
third

4
00:00:41,000 --> 00:01:20,000
a cue longer than the window
"""


def test_srt_and_vtt_cues_become_segments_cut_on_cue_boundaries(tmp_path: Path) -> None:
    srt = tmp_path / "talk.srt"
    srt.write_text(SRT, encoding="utf-8")
    cues = parse_cues(srt)
    assert cues[0] == Cue(0.5, 12.0, "first cue") and cues[1].text == "second cue continued"
    vtt = tmp_path / "talk.vtt"
    vtt.write_text("WEBVTT\n\n" + SRT.replace(",", ".").replace("00:00:12.000", "00:00:12.000 align:start"))
    assert parse_cues(vtt) == cues
    segments = group_cues(cues, 30.0)
    assert [(s.start, s.end) for s in segments] == [(0.5, 25.0), (26.0, 40.0), (41.0, 80.0)]
    assert segments[0].text == "first cue second cue continued"
    assert all(s.end - s.start <= 30.0 for s in segments[:2])  # the 39 s cue stands alone


def test_long_recording_with_sidecar_srt_becomes_utterances(tmp_path: Path, make_ctx) -> None:
    write_tone(tmp_path / "data" / "talk.wav", 82.0, 16000)
    (tmp_path / "data" / "talk.srt").write_text(SRT, encoding="utf-8")
    write_tone(tmp_path / "data" / "short.wav", 2.0, 16000)
    write_manifest(tmp_path / "data" / "train.jsonl", [
        {"audio_filepath": "talk.wav", "duration": 82.0, "text": ""},
        {"audio_filepath": "short.wav", "duration": 2.0, "text": "hello"},
    ])
    ctx = make_ctx(tmp_path / "data", data={"val": None, "test": None}, model={"dims": {"n_audio_ctx": 1500}})
    data = SpeechModality().load_data(ctx)
    records = data.records("train")
    assert [r.id for r in records] == ["talk.wav#000", "talk.wav#001", "talk.wav#002", "short.wav"]
    assert [(r.fields["offset"], r.fields["duration"]) for r in records[:3]] == [(0.5, 24.5), (26.0, 14.0), (41.0, 39.0)]
    store = ctx.stash[STORE_KEY]
    assert store.get(records[1]).size == 14 * 16000
    assert store.get(records[3]).size == 2 * 16000


def test_manifest_segments_of_one_file_get_distinct_ids_and_are_not_duplicates(tmp_path: Path) -> None:
    from framework.data.fingerprints import fingerprint

    low, high = tone(3.0, 16000, freq=300.0), tone(3.0, 16000, freq=3000.0)
    sf.write(str(tmp_path / "long.wav"), np.concatenate([low, high]), 16000)  # two different halves
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "long.wav", "offset": 0.0, "duration": 3.0, "text": "a"},
        {"audio_filepath": "long.wav", "offset": 3.0, "duration": 3.0, "text": "b"},
    ])
    records, quarantined = read_manifest(manifest, root=tmp_path, split="train", format="nemo_audio")
    assert not quarantined and [r.id for r in records] == ["long.wav@0+3", "long.wav@3+3"]
    first, second = (fingerprint(r) for r in records)
    assert first.exact != second.exact and first.near != second.near


def test_truncated_silent_and_wrong_rate_files_are_quarantined_with_reasons(tmp_path: Path, make_ctx) -> None:
    data_dir = tmp_path / "data"
    write_tone(data_dir / "good.wav", 2.0, 16000)
    write_tone(data_dir / "silent.wav", 2.0, 16000, amplitude=0.0)
    full = write_tone(data_dir / "truncated.wav", 2.0, 16000).read_bytes()
    (data_dir / "truncated.wav").write_bytes(full[: len(full) // 2])
    # 2 s of 16 kHz samples with a header claiming 8 kHz: plays as 4 s, half as fast.
    sf.write(str(data_dir / "wrong_rate.wav"), tone(2.0, 16000), 8000)
    write_manifest(data_dir / "train.jsonl", [
        {"audio_filepath": f"{name}.wav", "duration": 2.0, "text": "hello there", "language": "en"}
        for name in ("good", "silent", "truncated", "wrong_rate")
    ])
    ctx = make_ctx(data_dir, data={"val": None, "test": None})
    data = SpeechModality().load_data(ctx)
    assert [r.id for r in data.records("train")] == ["good.wav"]
    reasons = {Path(q.source.split(":")[0]).name + ":" + q.record_id: (q.reason, q.detail) for q in data.quarantine}
    assert reasons["train.jsonl:silent.wav"][0] == "silent" and "silent.wav" in reasons["train.jsonl:silent.wav"][1]
    assert reasons["train.jsonl:truncated.wav"][0] == "undecodable"
    reason, detail = reasons["train.jsonl:wrong_rate.wav"]
    assert reason == "duration_mismatch" and "4.00 s at 8000 Hz" in detail and "says 2.00 s" in detail
    assert all(q.source.endswith((":2", ":3", ":4")) for q in data.quarantine)  # file:line of each
    # The audit's format check reports the odd rate of what remained readable.
    assert data.extras["audio_info"][str(data_dir / "wrong_rate.wav")].samplerate == 8000


def test_unknown_language_and_short_dims_vocabulary_are_refused(tmp_path: Path, make_ctx, corpus) -> None:
    from framework.errors import FrameworkError

    with pytest.raises(ValueError, match="no Whisper token"):
        SpeechModality().load_data(make_ctx(corpus, modality={"language": "klingon"}))
    ctx = make_ctx(corpus, model={"dims": {"n_vocab": 50000}})
    with pytest.raises(FrameworkError, match="n_vocab=50000"):
        SpeechModality().build_task(ctx, SpeechModality().load_data(ctx))
    assert json.loads((corpus / "train.jsonl").read_text().splitlines()[0])["language"] in ("hi", "en")


def test_drift_features_measure_each_utterance_as_it_is(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from framework.data.records import Record

    loud = write_tone(tmp_path / "loud.wav", 1.0, 44100, amplitude=0.5)
    quiet = write_tone(tmp_path / "quiet.flac", 2.0, 16000, amplitude=0.05, channels=2)
    long_file = write_tone(tmp_path / "long.wav", 4.0, 16000, amplitude=0.5)
    records = [
        Record(id="a", split="new", source="m", media=loud, label=None, fields={"language": "en"}),
        Record(id="b", split="new", source="m", media=quiet, label=None, fields={}),
        Record(id="c", split="new", source="m", media=long_file, label=None, fields={"offset": 1.0, "duration": 1.5}),
        Record(id="d", split="new", source="m", media=tmp_path / "missing.wav", label=None, fields={}),
    ]
    ctx = SimpleNamespace(modality=SimpleNamespace(language="hi"))
    out = SpeechModality().drift_features(ctx, records)  # type: ignore[arg-type]
    assert out["language"] == ["en", "hi", "hi", "hi"]  # the manifest's, else modality.language
    assert out["sample_rate"] == ["44100", "16000", "16000", None]
    assert out["channels"] == ["1", "2", "1", None]
    assert out["duration"][:3] == pytest.approx([1.0, 2.0, 1.5], abs=1e-3) and out["duration"][3] is None
    sine_dbfs = 20 * np.log10(0.5 / np.sqrt(2))  # RMS of a sine of amplitude 0.5
    assert out["level_dbfs"][0] == pytest.approx(sine_dbfs, abs=0.05)
    assert out["level_dbfs"][1] < sine_dbfs - 19  # 20 dB quieter (two sines mixed to mono)
    assert out["silence"][0] == pytest.approx(0.0, abs=0.05)
