"""Faults that used to crash or fail late: each is one line at load or validation (docs/reliability.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import soundfile as sf

from framework.data.errors import DataError
from framework.data.records import Record
from framework.errors import FrameworkError


def test_cuda_without_cuda_is_a_trainer_value_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    from framework.training import TrainerConfig
    from framework.training.config import validate_trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for device in ("cuda", "cuda:7"):
        with pytest.raises(FrameworkError, match=f"trainer.device='{device}' is invalid: CUDA is not available"):
            validate_trainer(TrainerConfig(device=device))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    validate_trainer(TrainerConfig(device="cuda:1"))
    with pytest.raises(FrameworkError, match=r"has 2 CUDA device\(s\)"):
        validate_trainer(TrainerConfig(device="cuda:7"))


def test_a_float_wav_full_of_nan_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    from plugins.speech.audio import AudioStore

    good, bad = tmp_path / "good.wav", tmp_path / "nan.wav"
    t = np.arange(16000) / 16000
    sf.write(good, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")
    sf.write(bad, np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    store = AudioStore()
    assert store.probe(good).ok
    result = store.probe(bad)
    assert not result.ok and result.reason == "non_finite" and "NaN" in result.detail


def _record(language: str | None = None, **fields: object) -> Record:
    extra = {"language": language} if language else {}
    return Record(id="a", split="train", source="m.jsonl:1", media=None, fields={**extra, **fields})


def test_whisper_languages_are_checked_at_load_and_names_are_accepted() -> None:
    from plugins.speech.dataset import check_languages
    from plugins.speech.tokens import language_code

    assert language_code("hindi") == "hi" and language_code("Hindi") == "hi"
    check_languages([_record("hindi"), _record("hi"), _record()], "en")
    with pytest.raises(DataError, match=r"m.jsonl:1.*'klingon' has no Whisper token; use one of the codes .*\bhi\b"):
        check_languages([_record("klingon")], "en")
    with pytest.raises(DataError, match="modality.language"):
        check_languages([], "klingon")


def test_subtitles_non_utf8_odd_cues_and_paths_outside_the_root(tmp_path: Path) -> None:
    from plugins.speech.segments import parse_cues, subtitle_file, vet_cues

    latin = tmp_path / "latin.srt"
    latin.write_bytes("1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"latin.srt.*not UTF-8"):
        parse_cues(latin)
    odd = tmp_path / "odd.srt"
    odd.write_text("1\n00:00:00,000 --> 00:00:02,000\na\n\n2\n00:00:01,500 --> 00:00:03,000\nb\n\n"
                   "3\n00:00:04,000 --> 00:00:04,000\nc\n\n4\n00:00:09,000 --> 00:00:12,000\nd\n\n"
                   "5\n00:00:20,000 --> 00:00:21,000\ne\n")
    kept, problems = vet_cues(parse_cues(odd), odd, audio_seconds=10.0)
    assert [c.text for c in kept] == ["a", "b", "d"]
    joined = "\n".join(problems)
    assert f"{odd}:6: cue overlaps" in joined and f"{odd}:10: zero-length" in joined
    assert f"{odd}:14: cue ends at 12.000 s, past the end" in joined and f"{odd}:18: cue starts at 20.000 s" in joined

    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.srt"
    outside.write_text("1\n00:00:00,000 --> 00:00:01,000\nsecret\n")
    os.symlink(outside, root / "link.srt")
    for named in (str(outside), "../secret.srt", "link.srt"):
        with pytest.raises(DataError, match="outside the data root"):
            subtitle_file(_record(subtitles=named), root)
    assert subtitle_file(_record(subtitles=str(outside)), root, allow_outside_root=True) == outside


def test_over_window_wording_tells_subtitle_segments_apart(tmp_path: Path) -> None:
    from framework.data.checks import CheckContext
    from framework.data.records import DataBundle
    from plugins.speech.checks import WINDOW_KEY, DurationCheck

    cue = Record(id="long#000", split="train", source="m:1", fields={"offset": 0.0, "duration": 45.0})
    short = [Record(id=f"s{i}", split="train", source="m:2", fields={"offset": 0.0, "duration": 20.0}) for i in range(3)]
    bundle = DataBundle(root=tmp_path, splits={"train": [cue, *short]}, extras={WINDOW_KEY: 30.0})
    result = DurationCheck().run(bundle, CheckContext("speech", {}, (), tmp_path, "text"))
    kinds = {f.kind: f for f in result.findings}
    assert "over_window" not in kinds and kinds["long_cue"].items == ("long#000",)
    assert "not segmented" not in kinds["long_cue"].detail and "split it into shorter cues" in kinds["long_cue"].detail


def test_a_manifest_that_is_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    from framework.data.paths import data_file

    root = tmp_path / "root"
    root.mkdir()
    elsewhere = tmp_path / "private.jsonl"
    elsewhere.write_text("{}\n")
    os.symlink(elsewhere, root / "train.jsonl")
    with pytest.raises(DataError, match="data.train.*symbolic link to .*private.jsonl, outside the data root"):
        data_file("train.jsonl", root=root, where="data.train")
    assert data_file("train.jsonl", root=root, where="data.train", allow_outside_root=True) == root / "train.jsonl"
    assert data_file(str(elsewhere), root=root, where="data.train") == elsewhere  # the config's own choice


def test_a_malformed_speech_json_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from plugins.speech import transcribe

    export, audio = tmp_path / "export", tmp_path / "audio"
    export.mkdir()
    audio.mkdir()
    sf.write(audio / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    for text in ("{not json", json.dumps({"dims": [1, 2], "model": {}, "language": "en", "audio": {},
                                          "normalizer": {}})):
        (export / "speech.json").write_text(text)
        with pytest.raises(SystemExit) as stop:
            transcribe.main([str(export), str(audio), str(tmp_path / "out.csv")])
        assert str(stop.value).startswith("error: ") and "speech.json is not a valid speech.json" in str(stop.value)
        assert "\n" not in str(stop.value)


def test_malformed_yaml_in_a_config_dir_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "cd" / "experiment"
    folder.mkdir(parents=True)
    (folder / "bad.yaml").write_text("a: [1\nb: :\n")
    result = cli("--config-dir", str(tmp_path / "cd"), "+modality=tabular", "+experiment=bad")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr[-2000:]
    assert f"{folder / 'bad.yaml'}:2:2: malformed YAML" in result.stderr


def test_a_hub_model_offline_is_a_config_error_naming_checkpoint_path(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import timm
    from huggingface_hub.errors import LocalEntryNotFoundError

    from plugins.vision.config import VisionModelConfig
    from plugins.vision.model import build_model

    def offline(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic "
                                      "has been disabled")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(FrameworkError, match="model.checkpoint_path"):
        build_model(VisionModelConfig(name="resnet18", pretrained=True), num_classes=2)
    with pytest.raises(LocalEntryNotFoundError):  # without pretrained weights it is not a download problem
        build_model(VisionModelConfig(name="resnet18", pretrained=False), num_classes=2)


def test_a_hub_model_offline_fails_at_once_and_cached_weights_still_load(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket
    import time

    import huggingface_hub
    import timm

    from plugins.vision import model as vision_model
    from plugins.vision.config import VisionModelConfig

    calls: list[tuple] = []

    def unreachable(address, timeout=None):  # type: ignore[no-untyped-def]
        calls.append(address)
        raise OSError("Name or service not known")

    def must_not_download(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("create_model was called: the hub client would now retry for a minute")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(timm, "create_model", must_not_download)
    started = time.perf_counter()
    with pytest.raises(FrameworkError, match=r"could not be reached \(and the weights are not cached here\).*model.checkpoint_path"):
        vision_model.build_model(VisionModelConfig(name="vit_tiny_patch16_224", pretrained=True), num_classes=2)
    assert time.perf_counter() - started < 5 and calls and calls[0][0] == "huggingface.co"
    built: list[str] = []
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: "/cache/" + name)
    monkeypatch.setattr(timm, "create_model", lambda name, **kw: built.append(name) or torch.nn.Linear(1, 1))
    vision_model.build_model(VisionModelConfig(name="vit_tiny_patch16_224", pretrained=True), num_classes=2)
    assert built == ["vit_tiny_patch16_224"]  # cached weights: no reachability needed


def test_a_type_error_in_an_override_names_the_key_the_type_and_an_example(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", "model.hidden=3", "stages=[audit]", "hydra.run.dir=run")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr[-2000:]
    assert "model.hidden=3 has the wrong type: model.hidden wants a list, e.g. model.hidden=[64,32]" in result.stderr
    assert "object_type" not in result.stderr


@pytest.mark.slow
def test_an_offline_pretrained_vision_run_stops_before_the_audit(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import socket

    from framework.testing import run_framework

    def unreachable(address, timeout=None):  # type: ignore[no-untyped-def]
        raise OSError("Name or service not known")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(FrameworkError, match="model.checkpoint_path"):
        run_framework(["+modality=vision", "model.name=resnet18", "model.pretrained=true"], tmp_path / "run")
    assert not (tmp_path / "run" / "audit").exists()  # said before any data was read or audited
