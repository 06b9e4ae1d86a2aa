"""Hugging Face datasets (save_to_disk folders, parquet, DatasetDicts) through the same readers and audit."""

from __future__ import annotations

import io

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from framework.data import DataConfig, load_bundle  # noqa: E402
from framework.data.audit import run_audit  # noqa: E402
from framework.data.errors import DataError  # noqa: E402
from framework.data.readers import detect_format  # noqa: E402


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FRAMEWORK_CACHE", str(tmp_path / "cache"))


def _png(colour: tuple[int, int, int], mode: str = "RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (8, 8), colour if mode == "RGB" else colour[0]).save(buf, format="PNG")
    return buf.getvalue()


def _image_dataset() -> "datasets.Dataset":
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 10, 0), (10, 240, 0), (0, 5, 250)]
    features = datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=["red", "green", "blue"])})
    return datasets.Dataset.from_dict({"img": [{"bytes": _png(c), "path": None} for c in colours],
                                       "y": [0, 1, 2, 0, 1, 2]}, features=features)


def test_save_to_disk_images_keep_class_names_and_decode_through_the_project(tmp_path) -> None:
    _image_dataset().save_to_disk(str(tmp_path / "pets"))
    assert detect_format(tmp_path / "pets") == "hf"
    cfg = DataConfig(root=str(tmp_path), train="pets", columns={"image": "img", "label": "y"})
    bundle = load_bundle(cfg, format="image_folder", label_type="class")  # the modality's default yields to hf
    records = bundle.records("train")
    assert [r.label for r in records] == ["red", "green", "blue", "red", "green", "blue"]
    assert bundle.classes == ["blue", "green", "red"]
    assert all(r.media.is_file() and r.media.suffix == ".png" for r in records)
    from framework.media.images import decode_image

    pixels, _ = decode_image(records[0].media, (8, 8))
    assert pixels.shape == (8, 8, 3) and pixels[0, 0].tolist() == [255, 0, 0]
    report = run_audit(bundle, cfg, modality="vision", out_dir=tmp_path / "audit", label_type="class")
    assert bundle.counts() == {"train": 6} and report.results  # the audit read the same records
    assert (tmp_path / "audit" / "datacard.md").is_file()


def test_a_corrupt_image_in_a_dataset_is_quarantined(tmp_path) -> None:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    datasets.Dataset.from_dict({"image": [{"bytes": _png((1, 2, 3)), "path": "a.png"},
                                          {"bytes": b"\x89PNG\r\n\x1a\nbroken", "path": "b.png"}],
                                "label": [0, 1]}, features=features).save_to_disk(str(tmp_path / "d"))
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="d"))
    assert len(bundle.records()) == 1 and [q.reason for q in bundle.quarantine] == ["undecodable"]


def test_audio_feature_and_column_mapping_give_transcripts(tmp_path) -> None:
    rate = 22050
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate)).astype(np.float32)
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, tone, rate, format="WAV")
    clip = {"bytes": buf.getvalue(), "path": "clip.wav"}  # how Common Voice on the hub stores its clips
    ds = datasets.Dataset.from_dict({"speech": [clip, clip],
                                     "sentence": ["hello there", "good night"], "client_id": ["s1", "s2"]},
                                    ).cast_column("speech", datasets.Audio(sampling_rate=rate))  # cast: no torchcodec needed
    ds.to_parquet(str(tmp_path / "cv.parquet"))
    cfg = DataConfig(root=str(tmp_path), train="cv.parquet", columns={"audio": "speech", "text": "sentence"},
                     slices=["client_id"])
    records = load_bundle(cfg, format="nemo_audio", label_type="text").records()
    assert [r.label for r in records] == ["hello there", "good night"]
    assert records[0].slices == {"client_id": "s1"}

    samples, sr = soundfile.read(records[0].media)
    assert sr == rate and samples.shape[0] == rate // 2  # the encoded bytes, decoded by the project (16 kHz there)
    bad = DataConfig(root=str(tmp_path), train="cv.parquet", columns={"audio": "speech", "text": "transcript"})
    with pytest.raises(DataError, match="data.columns.text=transcript is not a column"):
        load_bundle(bad, label_type="text")


def test_dataset_dict_splits_and_a_missing_one(tmp_path) -> None:
    rows = {"text": ["a b c", "d e f", "g h i"], "label": ["x", "y", "x"]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                          "validation": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "dd"))
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="dd", val="dd"))
    assert bundle.counts() == {"train": 3, "val": 3}
    with pytest.raises(DataError, match=r"splits \['train', 'validation'\].*data.test=null"):
        load_bundle(DataConfig(root=str(tmp_path), train="dd", test="dd"))


def test_sharegpt_rows_in_a_dataset_become_chats(tmp_path) -> None:
    convo = [{"from": "human", "value": "1 km in m?"}, {"from": "gpt", "value": "1000 m"}]
    datasets.Dataset.from_dict({"conversations": [convo, convo[:1] + [{"from": "gpt", "value": "x"}]]}) \
        .save_to_disk(str(tmp_path / "sg"))
    records = load_bundle(DataConfig(root=str(tmp_path), train="sg"), format="chat", label_type="text").records()
    assert records[0].fields["messages"][1] == {"role": "assistant", "content": "1000 m"}
    assert records[0].source.endswith("sg:0")


def test_text_sft_trains_two_steps_on_a_saved_dataset(tmp_path) -> None:
    from framework.testing import run_framework

    rows = [[{"role": "user", "content": f"{n} km in m?"}, {"role": "assistant", "content": f"{n * 1000} m"}]
            for n in range(1, 13)]
    datasets.Dataset.from_dict({"messages": rows}).save_to_disk(str(tmp_path / "data" / "chats"))
    (tmp_path / "data" / "datacard.yaml").write_text("sources: [chats written by the test]\n")
    result = run_framework(["+modality=text", f"data.root={tmp_path / 'data'}", "data.train=chats", "data.val=null",
                            "data.test=null", "data.slices=[]", "trainer.max_steps=2", "trainer.batch_size=4",
                            "trainer.progress=false", "stages=[audit,train]"], tmp_path / "run")
    assert result.status == "completed"
