"""Merging reviewed items into a training manifest: provenance, agreement gate, leaks, data card."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from framework.annotation.merge import merge_corrections
from framework.data.dataset_card import read_dataset_card
from framework.data.provenance import merged_summary
from framework.data.readers import read_manifest
from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError

NOW = datetime(2026, 12, 2, 19, 0, tzinfo=timezone.utc)


def _png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)
    return path


def _data(root: Path) -> DataBundle:
    """Two train images, one val image, one test image, each of its own grey."""
    root.mkdir(parents=True)
    (root / "datacard.yaml").write_text("name: greys  # the bundled greys\nsources: [made here]\n")
    split = {"train": [("train/a.png", 10, "dark"), ("train/b.png", 240, "light")],
             "val": [("val/c.png", 60, "dark")], "test": [("test/d.png", 200, "light")]}
    return DataBundle(root=root, classes=["dark", "light"], splits={
        name: [Record(id=rel, split=name, source=rel, media=_png(root / rel, v), label=label) for rel, v, label in rows]
        for name, rows in split.items()})


def _task(item: str, image: Path, votes: dict[str, str], predicted: str | None) -> dict:
    def result(label: str) -> list[dict]:
        return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]

    return {"data": {"item_id": item, "image": str(image)},
            "annotations": [{"completed_by": {"id": n, "email": who}, "result": result(label),
                             "created_at": f"2026-12-01T10:0{n}:00Z"} for n, (who, label) in enumerate(votes.items())],
            "predictions": [] if predicted is None else [{"model_version": "run-1", "result": result(predicted)}]}


def _export(path: Path, tasks: list[dict]) -> Path:
    path.write_text(json.dumps(tasks))
    return path


def test_merge_adds_items_with_provenance_refuses_leaks_and_ties_and_records_the_card(tmp_path) -> None:
    root = tmp_path / "data"
    data = _data(root)
    batch = tmp_path / "batch"
    export = _export(tmp_path / "pulled.json", [
        _task("new/1.png", _png(batch / "1.png", 30), {"ann@x": "dark", "bob@x": "dark"}, "light"),
        _task("new/2.png", _png(batch / "2.png", 230), {"ann@x": "light"}, "light"),
        _task("new/3.png", _png(batch / "3.png", 60), {"ann@x": "dark"}, "dark"),  # the val image's content
        _task("new/4.png", root / "test" / "d.png", {"ann@x": "light"}, "light"),  # the test image itself
        _task("new/5.png", _png(batch / "5.png", 120), {"ann@x": "dark", "bob@x": "light"}, "dark"),  # a tie
        _task("train/a.png", root / "train" / "a.png", {"ann@x": "light"}, "dark"),  # relabels a train item
    ])
    out = root / "corrections" / "r1" / "train.jsonl"
    done = merge_corrections(data, [export], out=out, min_kappa=0.0, model_version="run-1", now=NOW)

    assert done.added == ["corrections/r1/media/new/1.png", "corrections/r1/media/new/2.png"]
    assert done.relabelled == {"train/a.png": ("dark", "light")}
    assert set(done.refused) == {"new/3.png", "new/4.png", "new/5.png"}
    assert "same content as val item val/c.png" in done.refused["new/3.png"]
    assert "same file as test item test/d.png" in done.refused["new/4.png"]
    assert "tie" in done.refused["new/5.png"]
    assert done.agreement is not None and done.agreement[2] == 2  # two items had two annotators

    records, quarantined = read_manifest(out, root=root, split="train")
    assert not quarantined
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"train/a.png", "train/b.png", *done.added}
    first = by_id["corrections/r1/media/new/1.png"]
    assert first.label == "dark" and first.media.read_bytes() == (batch / "1.png").read_bytes()
    assert first.fields["provenance"] == {
        "source": "pulled.json:task[0]", "annotators": ["ann@x", "bob@x"], "date": "2026-12-01T10:01:00Z",
        "model_prediction": "light", "model_version": "run-1", "merged_at": "2026-12-02T19:00:00Z",
        "item_id": "new/1.png", "previous_label": None}
    assert by_id["train/a.png"].label == "light" and by_id["train/a.png"].fields["provenance"]["previous_label"] == "dark"

    summary = merged_summary(records)
    assert summary["items"] == 3 and summary["sources"] == {"pulled.json": 3}
    assert summary["label_changes"] == {"light -> dark": 1, "dark -> light": 1} and summary["corrected"] == 2

    card = read_dataset_card(root)
    assert card.name == "greys" and len(card.merges) == 1
    assert card.merges[0]["added"] == 2 and card.merges[0]["manifest"] == "corrections/r1/train.jsonl"
    assert "# the bundled greys" in (root / "datacard.yaml").read_text()  # the card's own text is kept
    merge_corrections(data, [export], out=root / "corrections" / "r2" / "train.jsonl", min_kappa=0.0, now=NOW)
    assert [m["manifest"] for m in read_dataset_card(root).merges] == ["corrections/r1/train.jsonl",
                                                                        "corrections/r2/train.jsonl"]


def test_agreement_gate_refuses_a_merge_of_disagreeing_annotators(tmp_path) -> None:
    data = _data(tmp_path / "data")
    tasks = [_task(f"n/{i}.png", _png(tmp_path / "b" / f"{i}.png", 20 + 40 * i),
                   {"ann@x": "dark", "bob@x": "light" if i % 2 else "dark"}, "dark") for i in range(4)]
    export = _export(tmp_path / "pulled.json", tasks)
    with pytest.raises(FrameworkError, match=r"agreement gate: .* below 0.70"):
        merge_corrections(data, [export], out=tmp_path / "data" / "m" / "train.jsonl", min_kappa=0.7, now=NOW)
    assert not (tmp_path / "data" / "m" / "train.jsonl").exists()


def test_manifest_outside_the_data_root_is_refused(tmp_path) -> None:
    data = _data(tmp_path / "data")
    export = _export(tmp_path / "pulled.json", [_task("n.png", _png(tmp_path / "n.png", 90), {"a": "dark"}, None)])
    with pytest.raises(FrameworkError, match="outside the run's data.root"):
        merge_corrections(data, [export], out=tmp_path / "elsewhere.jsonl", min_kappa=0.7, now=NOW)


def test_merges_key_must_stay_last_in_the_card(tmp_path) -> None:
    from framework.data.dataset_card import record_merge
    from framework.data.errors import DataError

    (tmp_path / "datacard.yaml").write_text("merges:\n  - {date: x}\nname: greys\n")
    with pytest.raises(DataError, match="datacard.yaml:1.*not the card's last key"):
        record_merge(tmp_path, {"date": "y"})


def test_transcripts_merge_as_nemo_lines_the_speech_reader_reads(tmp_path) -> None:
    import wave

    import numpy as np

    def wav(path: Path, pitch: float) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
            out.writeframes((np.sin(np.arange(8000) * pitch) * 8000).astype("<i2").tobytes())
        return path

    root = tmp_path / "speech"
    train = Record(id="a.wav", split="train", source="m:1", media=wav(root / "a.wav", 0.05), label="old words",
                   text="old words", fields={"audio_filepath": "a.wav", "text": "old words"})
    data = DataBundle(root=root, splits={"train": [train]})
    said = [{"from_name": "transcription", "to_name": "audio", "type": "textarea", "value": {"text": [words]}}
            for words in ("new words", "helo there", "hello there")]
    export = _export(tmp_path / "pulled.json", [
        {"data": {"item_id": "a.wav", "audio": str(root / "a.wav")},
         "annotations": [{"completed_by": 1, "result": said[:1]}]},
        {"data": {"item_id": "b.wav", "audio": str(wav(tmp_path / "batch" / "b.wav", 0.09))},
         "predictions": [{"model_version": "asr", "result": said[1:2]}], "annotations": [{"completed_by": 1, "result": said[2:]}]},
    ])
    out = root / "corrections" / "c1" / "train.jsonl"
    done = merge_corrections(data, [export], out=out, min_kappa=0.7, now=NOW, label_type="text")
    assert done.relabelled == {"a.wav": ("old words", "new words")}
    records, _ = read_manifest(out, root=root, split="train", format="speech")
    assert {r.id: r.label for r in records} == {"a.wav": "new words", "corrections/c1/media/b.wav": "hello there"}
    assert merged_summary(records)["label_changes"] == {"old words -> new words": 1, "helo there -> hello there": 1}


def test_captions_are_refused_with_the_reason(tmp_path) -> None:
    data = _data(tmp_path / "data")
    caption = [{"from_name": "transcription", "to_name": "image", "type": "textarea", "value": {"text": ["a red disc"]}}]
    tasks = [{"data": {"item_id": "x#caption0", "image": str(_png(tmp_path / "x.png", 77)), "text": "a blue disc"},
              "annotations": [{"completed_by": 1, "result": caption}]}]
    with pytest.raises(FrameworkError, match="every reviewed item was refused: x#caption0: only class labels"):
        merge_corrections(data, [_export(tmp_path / "p.json", tasks)], out=tmp_path / "data" / "m.jsonl",
                          min_kappa=0.7, now=NOW, label_type="text")
