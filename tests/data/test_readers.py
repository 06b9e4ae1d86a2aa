"""Readers: formats, ids, slices, errors that name file:line, quarantine, root escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from planted_data import make_image, make_wav, truncate, write_jsonl

from framework.data import (
    DataConfig,
    DataError,
    ReadOptions,
    Record,
    detect_format,
    list_readers,
    load_bundle,
    probe_audio,
    probe_image,
    read_manifest,
    register_reader,
)


def test_jsonl_ids_slices_and_fields(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 1)
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"id": "x1", "path": "a.png", "label": "cat", "lighting": "dim", "extra": 3},
        {"path": "a.png", "label": "cat"},
        {"text": "hello", "label": "greeting"},
    ])
    records, quarantined = read_manifest(path, root=tmp_path, split="train", slices=["lighting"])
    assert quarantined == []
    assert [r.id for r in records] == ["x1", "a.png", "m.jsonl:3"]
    assert records[0].slices == {"lighting": "dim"} and records[1].slices == {}
    assert records[0].fields["extra"] == 3 and records[0].media == (tmp_path / "a.png")
    assert records[2].media is None and records[2].text == "hello"
    assert records[0].source == f"{path}:1"


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "ok"}, "", '{"text": "broken",'])
    with pytest.raises(DataError) as err:
        read_manifest(path, root=tmp_path, split="train")
    assert f"{path}:3" in str(err.value) and "not valid JSON" in str(err.value)
    assert "Fix or remove the line" in str(err.value)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"audio_filepath": "a.wav", "text": "hi"}, "missing required field 'duration'"),
        ({"audio_filepath": "a.wav", "duration": "long", "text": "hi"}, "field 'duration' must be int/float"),
        ({"audio_filepath": "a.wav", "duration": 1.0, "text": 5}, "field 'text' must be str"),
    ],
)
def test_nemo_missing_or_wrong_field(tmp_path: Path, row: dict, expected: str) -> None:
    make_wav(tmp_path / "a.wav", 440)
    path = write_jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "duration": 0.5, "text": "ok"}, row])
    with pytest.raises(DataError, match=expected) as err:
        read_manifest(path, root=tmp_path, split="train", format="nemo_audio")
    assert f"{path}:2" in str(err.value)


@pytest.mark.parametrize("raw", ["../outside.png", "/etc/passwd", "sub/../../outside.png"])
def test_paths_escaping_root_are_refused(tmp_path: Path, raw: str) -> None:
    root = tmp_path / "root"
    make_image(tmp_path / "outside.png", 1)
    path = write_jsonl(root / "m.jsonl", [{"path": raw, "label": "x"}])
    with pytest.raises(DataError, match="outside the data root") as err:
        read_manifest(path, root=root, split="train")
    assert "allow_outside_root" in str(err.value)


def test_allow_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_image(tmp_path / "outside.png", 1)
    path = write_jsonl(root / "m.jsonl", [{"path": "../outside.png", "label": "x"}])
    records, _ = read_manifest(path, root=root, split="train", allow_outside_root=True)
    assert records[0].media == tmp_path / "outside.png"


def test_missing_and_corrupt_media_are_quarantined(tmp_path: Path) -> None:
    make_image(tmp_path / "good.png", 1)
    truncate(tmp_path / "good.png", tmp_path / "bad.png", keep=0.4)
    path = write_jsonl(tmp_path / "m.jsonl", [{"path": p, "label": "x"} for p in ("good.png", "gone.png", "bad.png")])
    records, quarantined = read_manifest(path, root=tmp_path, split="train", probe=probe_image)
    assert [r.id for r in records] == ["good.png"]
    assert {(q.record_id, q.reason) for q in quarantined} == {("gone.png", "missing_file"), ("bad.png", "undecodable")}
    assert all(q.detail and q.source.startswith(str(path)) for q in quarantined)
    # without a probe, only the missing file is quarantined; the cleanliness gate finds the other
    records, quarantined = read_manifest(path, root=tmp_path, split="train")
    assert [q.reason for q in quarantined] == ["missing_file"] and len(records) == 2


def test_truncated_wav_is_quarantined(tmp_path: Path) -> None:
    make_wav(tmp_path / "a.wav", 440)
    truncate(tmp_path / "a.wav", tmp_path / "cut.wav", keep=0.5)
    rows = [{"audio_filepath": n, "duration": 0.5, "text": "t", "language": "hi"} for n in ("a.wav", "cut.wav")]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    records, quarantined = read_manifest(path, root=tmp_path, split="train", slices=["language"], probe=probe_audio)
    assert [r.id for r in records] == ["a.wav"] and records[0].label == "t" and records[0].slices == {"language": "hi"}
    assert quarantined[0].reason == "undecodable" and "truncated" in quarantined[0].detail


def test_duplicate_id_in_one_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"id": 1, "text": "a"}, {"id": 1, "text": "b"}])
    with pytest.raises(DataError, match="already used at"):
        read_manifest(path, root=tmp_path, split="train")


def test_csv(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 1)
    (tmp_path / "m.csv").write_text("path,label,accent\na.png,cat,us\n,,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m.csv:3.*neither a media path"):
        read_manifest(tmp_path / "m.csv", root=tmp_path, split="val", slices=["accent"])
    (tmp_path / "m.csv").write_text("path,label,accent\na.png,cat,us\n", encoding="utf-8")
    records, _ = read_manifest(tmp_path / "m.csv", root=tmp_path, split="val", slices=["accent"])
    assert records[0].label == "cat" and records[0].slices == {"accent": "us"} and records[0].split == "val"


def test_image_folder(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        make_image(tmp_path / "data" / cls / "1.png", hash(cls) % 100)
    (tmp_path / "data" / "dog" / "notes.txt").write_text("x")
    (tmp_path / "data" / "stray.png").write_bytes(b"")
    records, quarantined = read_manifest(tmp_path / "data", root=tmp_path, split="train")
    assert sorted((r.id, r.label) for r in records) == [("data/cat/1.png", "cat"), ("data/dog/1.png", "dog")]
    assert {q.reason for q in quarantined} == {"unsupported_file", "no_class_folder"}


def test_image_folder_under_a_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_image(tmp_path / "data" / "train" / "cat" / "1.png", 1)
    monkeypatch.chdir(tmp_path)
    records, quarantined = read_manifest(Path("data/train"), root=Path("data"), split="train")
    assert [r.id for r in records] == ["train/cat/1.png"] and quarantined == []
    assert records[0].media is not None and records[0].media.is_file()


def test_chat_validates_roles(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
    path = write_jsonl(tmp_path / "c.jsonl", [good])
    records, _ = read_manifest(path, root=tmp_path, split="train")
    assert records[0].text == "user: 2+2?\nassistant: 4"
    bad_role = {"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    write_jsonl(path, [good, bad_role])
    with pytest.raises(DataError, match=r"c.jsonl:2.*role 'human'"):
        read_manifest(path, root=tmp_path, split="train")
    write_jsonl(path, [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(DataError, match="no assistant message"):
        read_manifest(path, root=tmp_path, split="train", format="chat")


def test_preference_and_gold_markers(tmp_path: Path) -> None:
    rows = [
        {"id": "p1", "prompt": "Is the earth flat? I think so.", "chosen": "No.", "rejected": "Yes, you're right!", "trap": True},
        {"id": "p2", "prompt": "Hi", "chosen": "Hello", "rejected": "Go away", "reason": "polite"},
    ]
    write_jsonl(tmp_path / "p.jsonl", rows)
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="p.jsonl"))
    assert bundle.extras["gold"] == {"p1": "chosen"} and bundle.classes == []
    assert bundle.splits["train"][0].text.startswith("Is the earth")
    write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Hi", "chosen": "a"}])
    with pytest.raises(DataError, match="missing required field 'rejected'"):
        read_manifest(tmp_path / "p.jsonl", root=tmp_path, split="train", format="preference")


def _ls_task(task_id: int, image: str, votes: dict[str, str]) -> dict:
    return {"id": task_id, "data": {"image": image, "lighting": "day"},
            "annotations": [{"completed_by": {"id": who, "email": f"{who}@x"}, "created_at": "2025-01-01T00:00:00Z",
                             "lead_time": 2.5, "result": [{"type": "choices", "from_name": "label", "to_name": "image",
                                                           "value": {"choices": [lab]}}]} for who, lab in votes.items()]}


def test_label_studio_export_loads_records_and_annotations(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 1)
    tasks = [_ls_task(1, "/data/local-files/?d=a.png", {"u1": "cat", "u2": "cat", "u3": "dog"}),
             _ls_task(2, "https://example.com/b.png", {"u1": "dog", "u2": "cat"})]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="export.json", slices=["lighting"]))
    recs = bundle.splits["train"]
    assert [(r.id, r.label) for r in recs] == [("1", "cat"), ("2", None)]  # task 2 is a tie
    assert recs[0].media == tmp_path / "a.png" and recs[1].media is None and recs[0].slices == {"lighting": "day"}
    assert len(bundle.annotations) == 5
    first = bundle.annotations[0]
    assert (first.item_id, first.annotator, first.label, first.lead_time) == ("1", "u1@x", "cat", 2.5)


def test_detect_format(tmp_path: Path) -> None:
    cases = {
        "a.jsonl": {"path": "x.png"},
        "b.jsonl": {"messages": []},
        "c.jsonl": {"prompt": "", "chosen": "", "rejected": ""},
        "d.jsonl": {"audio_filepath": "x.wav"},
    }
    for name, row in cases.items():
        write_jsonl(tmp_path / name, [row])
    assert [detect_format(tmp_path / n) for n in cases] == ["jsonl", "chat", "preference", "nemo_audio"]
    (tmp_path / "e.json").write_text("[]")
    (tmp_path / "f.csv").write_text("path\n")
    assert detect_format(tmp_path / "e.json") == "label_studio" and detect_format(tmp_path / "f.csv") == "csv"
    assert detect_format(tmp_path) == "image_folder"
    with pytest.raises(DataError, match="data.format"):
        detect_format(tmp_path / "g.parquet")


def test_deprecated_register_reader_still_registers_a_third_party_reader(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import framework.data.readers as readers_module
    from framework.data.readers import ReaderRegistry

    monkeypatch.setattr(readers_module, "_LEGACY", ReaderRegistry())  # this process's other tests never see it

    def read_lines(path: Path, opts: ReadOptions) -> tuple[list[Record], list]:
        lines = path.read_text().splitlines()
        return [Record(id=str(i), split=opts.split, source=f"{path}:{i + 1}", text=t) for i, t in enumerate(lines)], []

    with pytest.warns(DeprecationWarning, match=r"framework_register_readers\(registry\)"):
        register_reader("plain_lines_test", read_lines, detect=lambda p: p.suffix == ".lines")
    assert "plain_lines_test" in list_readers()
    with pytest.raises(ValueError, match="already registered"), pytest.warns(DeprecationWarning):
        register_reader("plain_lines_test", read_lines)
    with pytest.raises(ValueError, match="already registered"), pytest.warns(DeprecationWarning):
        register_reader("csv", read_lines)  # a built-in name, as before
    (tmp_path / "x.lines").write_text("a\nb\n")
    records, _ = read_manifest(tmp_path / "x.lines", root=tmp_path, split="train")
    assert [r.text for r in records] == ["a", "b"]
    with pytest.raises(ValueError, match="known formats"):
        read_manifest(tmp_path / "x.lines", root=tmp_path, split="train", format="nope")


def test_load_bundle_splits_gold_annotations_and_format(tmp_path: Path) -> None:
    for i in range(2):
        make_image(tmp_path / f"{i}.png", i)
    write_jsonl(tmp_path / "train.jsonl", [{"path": "0.png", "label": "cat"}, {"path": "1.png", "label": "dog", "gold_label": "dog"}])
    write_jsonl(tmp_path / "val.jsonl", [{"path": "gone.png", "label": "cat"}])
    write_jsonl(tmp_path / "gold.jsonl", [{"id": "0.png", "label": "cat"}])
    write_jsonl(tmp_path / "ann.jsonl", [{"item_id": "0.png", "annotator": "u1", "label": "cat"},
                                         {"item_id": "0.png", "annotator": "u2", "label": "dog", "timestamp": "t"}])
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", val="val.jsonl", gold="gold.jsonl", annotations="ann.jsonl")
    bundle = load_bundle(cfg, format="jsonl")
    assert bundle.counts() == {"train": 2, "val": 0} and bundle.classes == ["cat", "dog"]
    assert bundle.quarantine[0].reason == "missing_file"
    assert bundle.extras["gold"] == {"0.png": "cat", "1.png": "dog"}
    assert {(a.annotator, a.label) for a in bundle.annotations} == {("u1", "cat"), ("u2", "dog")}
    with pytest.raises(DataError, match="no training data"):
        load_bundle(DataConfig(root=str(tmp_path)))


def test_preference_prompt_as_messages(tmp_path: Path) -> None:
    row = {"prompt": [{"role": "system", "content": "Be honest."}, {"role": "user", "content": "Am I right?"}],
           "chosen": [{"role": "assistant", "content": "Not quite."}], "rejected": "Absolutely!"}
    records, _ = read_manifest(write_jsonl(tmp_path / "p.jsonl", [row]), root=tmp_path, split="train")
    assert records[0].text == "system: Be honest.\nuser: Am I right?"
