"""The speech layouts users already have: Common Voice, Kaldi, LibriSpeech, audio + .txt, audiofolder.

Each fixture is written here (tiny tones by soundfile); each is read through ``data.format=auto``
by the speech modality's ``load_data`` and audited, and a Common Voice folder trains two steps.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from framework.data import run_audit
from framework.data.errors import DataError
from framework.data.readers import detect_format, read_manifest
from framework.testing import run_framework
from plugins.speech.modality import SpeechModality
from speech_fixtures import (
    DIM_OVERRIDES,
    write_audio_text_folder,
    write_common_voice,
    write_kaldi,
    write_librispeech,
    write_tone,
)


def _load(make_ctx, root: Path, **data):
    return SpeechModality().load_data(make_ctx(root, data=data))


def test_common_voice_folder_loads_with_speakers_slices_and_its_own_split_files(tmp_path, make_ctx, caplog) -> None:
    root = write_common_voice(tmp_path / "cv")
    with caplog.at_level(logging.INFO):
        bundle = _load(make_ctx, root)  # data.train/val/test left at train.jsonl/val.jsonl/test.jsonl
    assert bundle.counts() == {"train": 3, "val": 1, "test": 1}
    assert "reading dev.tsv, the val split" in caplog.text and "as common_voice" in caplog.text
    first = bundle.records("train")[0]
    assert first.label == first.text == 'she said "hello"'  # quotes kept: tabs only split cells
    assert first.fields["speaker"] == "spk_a" and first.fields["language"] == "en"
    assert first.slices["accent"] == "us" and first.slices["locale"] == "en"
    assert first.fields["duration"] > 0.5  # filled from the decoded clip
    assert first.media == root / "clips" / "cv_0.wav"
    report = run_audit(bundle, make_ctx(root).data, modality="speech", out_dir=tmp_path / "audit", label_type="text")
    assert report.result("coverage").passed, report.result("coverage").summary


def test_common_voice_missing_clip_is_quarantined_and_bad_rows_are_named(tmp_path) -> None:
    root = write_common_voice(tmp_path / "cv")
    (root / "clips" / "cv_1.wav").unlink()
    records, quarantined = read_manifest(root / "train.tsv", root=root, split="train")
    assert [r.fields["speaker"] for r in records] == ["spk_a", "spk_a"]
    assert [(q.reason, q.record_id) for q in quarantined] == [("missing_file", "clips/cv_1.wav")]
    with (root / "train.tsv").open("a") as fh:
        fh.write("spk_z\tcv_9.wav\ta stray\ttab\t2\t0\t\t\t\t\ten\t\n")
    with pytest.raises(DataError, match=r"train\.tsv:5: 12 tab-separated cells, the header has 11"):
        read_manifest(root / "train.tsv", root=root, split="train")
    (root / "other.tsv").write_text("id\ttranscript\n1\thello\n")
    with pytest.raises(DataError, match=r"other\.tsv.*id\\ttranscript.*data\.format"):
        read_manifest(root / "other.tsv", root=root, split="train")


def test_kaldi_data_dir_cuts_segments_and_names_unusable_lines(tmp_path, make_ctx) -> None:
    root = tmp_path / "corpus"
    write_kaldi(root / "data" / "train", root / "wav", root)
    (root / "datacard.yaml").write_text("sources: [tones]\n")
    bundle = _load(make_ctx, root, train="data/train", val=None, test=None)
    assert [r.id for r in bundle.records("train")] == ["u1", "u2", "u3"]
    u2 = bundle.records("train")[1]
    assert (u2.text, u2.fields["speaker"], u2.fields["gender"]) == ("general kenobi", "bob", "m")
    assert (u2.fields["offset"], u2.fields["duration"]) == (1.0, 0.8)
    assert u2.media == root / "wav" / "rec1.wav"
    # An utterance without a transcript is held out; a command pipe is a bad line with the fix.
    data = root / "data" / "train"
    (data / "text").write_text("u1 hello there\nu3 good morning\n")
    records, quarantined = read_manifest(data, root=root, split="train")
    assert [r.id for r in records] == ["u1", "u3"]
    assert [(q.reason, q.record_id) for q in quarantined] == [("missing_transcript", "u2")]
    (data / "segments").unlink()
    (data / "wav.scp").write_text("u1 sox in.sph -t wav - |\nu3 wav/rec2.wav\n")
    with pytest.raises(DataError, match=r"wav\.scp:1: a command pipe .* Write the audio out to files"):
        read_manifest(data, root=root, split="train")


def test_librispeech_folder_keeps_speaker_and_chapter(tmp_path, make_ctx) -> None:
    root = tmp_path / "LibriSpeech"
    write_librispeech(root / "train-clean-5")
    (root / "datacard.yaml").write_text("sources: [tones]\n")
    (root / "train-clean-5" / "84" / "121123" / "84-121123-0001.flac").unlink()
    bundle = _load(make_ctx, root, train="train-clean-5", val=None, test=None)
    assert sorted(r.id for r in bundle.records("train")) == ["174-50561-0000", "174-50561-0001", "84-121123-0000"]
    rec = next(r for r in bundle.records("train") if r.id == "84-121123-0000")
    assert (rec.text, rec.fields["speaker"], rec.fields["chapter"]) == ("WORDS OF UTTERANCE 0", "84", "121123")
    assert [(q.reason, q.record_id) for q in bundle.quarantine] == [("missing_file", "84-121123-0001")]


def test_folder_of_wavs_and_txts_says_how_to_use_it_and_then_reads(tmp_path, make_ctx) -> None:
    root = write_audio_text_folder(tmp_path / "recordings")
    with pytest.raises(DataError) as err:
        _load(make_ctx, root)  # data.train left at train.jsonl
    message = str(err.value)
    assert "train.jsonl not found" in message and "4 .wav" in message and "4 .txt" in message
    assert "one audio_text_folder source" in message and "python -m framework.data split" in message
    assert "data.train=. stages=[audit,train]" in message
    write_tone(root / "extra.wav", 0.5, 16000)  # no transcript
    bundle = _load(make_ctx, root, train=".", sources=["tones"])
    assert sorted(r.text for r in bundle.records("train")) == [f"utterance number {i}" for i in range(4)]
    assert bundle.counts() == {"train": 4}  # val/test left at their defaults and absent: skipped
    assert [(q.reason, q.record_id) for q in bundle.quarantine] == [("missing_transcript", "extra.wav")]


def test_audiofolder_metadata_reads_transcription_and_fields(tmp_path) -> None:
    root = tmp_path / "af"
    for i in range(2):
        write_tone(root / "train" / f"{i}.wav", 0.5, 16000, freq=300.0 + 90 * i)
    (root / "train" / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"{i}.wav", "transcription": f"clip {i}", "speaker": "s1"}) + "\n"
                for i in range(2)))
    assert detect_format(root / "train") == "audiofolder"
    records, _ = read_manifest(root / "train", root=root, split="train")
    assert [(r.text, r.label, r.fields["speaker"]) for r in records] == [("clip 0", "clip 0", "s1"), ("clip 1", "clip 1", "s1")]
    (root / "train" / "metadata.jsonl").write_text(json.dumps({"path": "0.wav", "transcription": "x"}) + "\n")
    with pytest.raises(DataError, match=r"metadata\.jsonl:1: no 'file_name' \(columns present: \['path', 'transcription'\]\)"):
        read_manifest(root / "train", root=root, split="train", format="audiofolder")


def test_data_columns_name_the_file_and_transcript_of_an_audiofolder_made_otherwise(tmp_path) -> None:
    root = tmp_path / "af"
    for i in range(2):
        write_tone(root / "train" / f"{i}.wav", 0.5, 16000, freq=300.0 + 90 * i)
    (root / "train" / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"{i}.wav", "file": f"{i}.wav", "transcription": "not this",
                            "sentence": f"clip {i}"}) + "\n" for i in range(2)))
    records, _ = read_manifest(root / "train", root=root, split="train", format="audiofolder",
                               columns={"audio": "file", "text": "sentence", "label": None})
    assert [(r.label, r.media.name) for r in records] == [("clip 0", "0.wav"), ("clip 1", "1.wav")]
    (root / "train" / "metadata.jsonl").write_text(json.dumps({"file": "0.wav", "sentence": "x"}) + "\n")
    records, _ = read_manifest(root / "train", root=root, split="train", format="audiofolder",
                               columns={"audio": "file", "text": "sentence"})
    assert [r.label for r in records] == ["x"]


def test_each_layout_is_detected_and_an_image_folder_is_not_speech(tmp_path, make_ctx) -> None:
    write_common_voice(tmp_path / "cv")
    write_kaldi(tmp_path / "k" / "train", tmp_path / "k" / "wav", tmp_path / "k")
    write_librispeech(tmp_path / "ls")
    write_audio_text_folder(tmp_path / "at")
    found = [detect_format(p) for p in (tmp_path / "cv" / "train.tsv", tmp_path / "k" / "train", tmp_path / "ls",
                                        tmp_path / "at")]
    assert found == ["common_voice", "kaldi", "librispeech", "audio_text_folder"]
    images = tmp_path / "img"
    (images / "train" / "cat").mkdir(parents=True)
    (images / "train" / "cat" / "1.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"not a speech layout: .* holds cat/ .*Common Voice .tsv beside clips/"):
        _load(make_ctx, images, train="train")


def test_a_common_voice_folder_trains_two_steps(tmp_path) -> None:
    root = write_common_voice(tmp_path / "cv")
    result = run_framework(["+modality=speech", f"data.root={root}", "stages=[audit,train]", "trainer.max_steps=2",
                            "trainer.batch_size=2", "trainer.eval_every=0", "trainer.progress=false",
                            "modality.language=en", *DIM_OVERRIDES], tmp_path / "run")
    assert result.status == "completed"
    card = (tmp_path / "run" / "audit" / "datacard.md").read_text()
    assert "train" in card and "val" in card
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps[-1] == 2
