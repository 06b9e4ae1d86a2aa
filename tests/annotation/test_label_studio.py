"""Label Studio: parsing results, review export -> import round trip, pre-annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framework.annotation import (
    AnnotationRecord,
    export_preannotations,
    export_review_tasks,
    import_label_studio,
    items_needing_review,
    majority_vote,
    parse_result,
)
from framework.annotation.records import by_item
from framework.data import Record
from framework.evaluation.types import Predictions


def test_parse_result_types() -> None:
    assert parse_result([{"type": "choices", "value": {"choices": ["cat"]}}]) == "cat"
    assert parse_result([{"type": "choices", "value": {"choices": ["b", "a"]}}]) == ("a", "b")
    assert parse_result([{"type": "textarea", "value": {"text": ["namaste", "world"]}}]) == "namaste\nworld"
    assert parse_result([{"type": "rating", "value": {"rating": 4}}]) == 4
    assert parse_result([{"type": "unknown", "value": {}}]) is None


def _records(root: Path) -> list[Record]:
    return [Record("a.png", "train", "m:1", media=root / "a.png", label="cat", slices={"lighting": "dim"}),
            Record("b.png", "train", "m:2", media=root / "b.png", label="dog"),
            Record("c.png", "train", "m:3", media=root / "c.png", label="cat")]


def test_review_export_import_round_trip(tmp_path: Path) -> None:
    anns = [AnnotationRecord("a.png", "u1", "cat", "2025-01-01T10:00:00Z", "v1", lead_time=3.0),
            AnnotationRecord("a.png", "u2", "dog", "2025-01-01T11:00:00Z", "v1"),
            AnnotationRecord("b.png", "u1", "dog"), AnnotationRecord("b.png", "u2", "dog"),
            AnnotationRecord("c.png", "u1", "cat"), AnnotationRecord("c.png", "u2", "cat")]
    consensus = majority_vote(by_item(anns))
    reasons = items_needing_review(anns, consensus=consensus, gold={"c.png": "dog"})
    assert reasons == {"a.png": ["disagreement", "tie", "low_confidence"], "c.png": ["failed_gold"]}
    path = export_review_tasks(_records(tmp_path), anns, reasons, tmp_path / "review.json", consensus=consensus, root=tmp_path)
    tasks = json.loads(path.read_text())
    assert [t["data"]["item_id"] for t in tasks] == ["a.png", "c.png"]
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=a.png" and tasks[0]["data"]["slice_lighting"] == "dim"
    assert tasks[0]["meta"]["review_reasons"] == ["disagreement", "tie", "low_confidence"]
    assert tasks[0]["predictions"][0]["score"] == 0.5
    back = import_label_studio(path)
    key = lambda a: (a.item_id, a.annotator, a.label)  # noqa: E731
    assert sorted(map(key, back)) == sorted(key(a) for a in anns if a.item_id in reasons)
    first = next(a for a in back if a.annotator == "u1" and a.item_id == "a.png")
    assert first.timestamp == "2025-01-01T10:00:00Z" and first.lead_time == 3.0 and first.guideline_version == "v1"


def test_export_preannotations(tmp_path: Path) -> None:
    preds = Predictions(split="unlabeled", ids=["a.png", "b.png"], targets=[None, None], outputs=["cat", "dog"],
                        scores=np.array([[0.8, 0.2], [0.3, 0.7]]), classes=["cat", "dog"])
    path = export_preannotations(preds, _records(tmp_path), tmp_path / "pre.json", label_type="class",
                                 model_version="vit-tiny@step100", root=tmp_path)
    tasks = json.loads(path.read_text())
    pred = tasks[1]["predictions"][0]
    assert pred["model_version"] == "vit-tiny@step100" and pred["score"] == 0.7
    assert pred["result"][0]["value"] == {"choices": ["dog"]} and pred["result"][0]["to_name"] == "image"
    # Transcripts go in a textarea; a corrected export reads back as text labels.
    text_preds = Predictions(split="u", ids=["a.png"], targets=[None], outputs=["hello there"],
                             extras={"confidence": [0.4]})
    path = export_preannotations(text_preds, _records(tmp_path), tmp_path / "asr.json", label_type="text", model_version="w")
    task = json.loads(path.read_text())[0]
    assert task["predictions"][0]["result"][0]["type"] == "textarea" and task["predictions"][0]["score"] == 0.4
    task["annotations"] = [{"completed_by": 7, "result": task["predictions"][0]["result"]}]
    (tmp_path / "asr_done.json").write_text(json.dumps([task]))
    assert [(a.item_id, a.annotator, a.label) for a in import_label_studio(tmp_path / "asr_done.json")] == [("a.png", "7", "hello there")]


def _choice(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def test_import_skips_cancelled_and_empty_annotations(tmp_path: Path) -> None:
    task = {"id": 7, "data": {"item_id": "a.png"}, "annotations": [
        {"completed_by": 1, "result": _choice("cat")},
        {"completed_by": 2, "result": _choice("dog"), "was_cancelled": True},  # skipped the task in the UI
        {"completed_by": 3, "result": []},  # submitted nothing
        {"completed_by": {"id": 4, "email": "d@example.org"}, "result": _choice("cat"), "was_cancelled": False},
    ]}
    (tmp_path / "export.json").write_text(json.dumps([task]))
    back = import_label_studio(tmp_path / "export.json")
    assert [(a.item_id, a.annotator, a.label) for a in back] == [("a.png", "1", "cat"), ("a.png", "d@example.org", "cat")]


def test_import_reads_the_tasks_object_form(tmp_path: Path) -> None:
    tasks = [{"data": {"id": "x1"}, "annotations": [{"completed_by": 1, "result": _choice("cat")}]},
             {"id": 99, "data": {}, "annotations": [{"completed_by": 2, "result": _choice("dog")}]}]
    (tmp_path / "wrapped.json").write_text(json.dumps({"tasks": tasks}))
    back = import_label_studio(tmp_path / "wrapped.json")
    assert [(a.item_id, a.annotator, a.label) for a in back] == [("x1", "1", "cat"), ("99", "2", "dog")]
    assert back[0].source == f"{tmp_path / 'wrapped.json'}:task[0]"


def test_import_errors_name_the_file_line_and_fix(tmp_path: Path) -> None:
    from framework.data.errors import DataError

    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"data": {}},\n  {"data": }\n]\n')
    with pytest.raises(DataError) as err:
        import_label_studio(bad)
    assert str(err.value).startswith(f"{bad}:3: not valid JSON")
    assert "Re-export the project as JSON." in str(err.value)
    wrong = tmp_path / "min.json"
    wrong.write_text(json.dumps({"image": "a.png", "label": "cat"}))
    with pytest.raises(DataError, match=r"min.json: expected a JSON list of task objects.*JSON_MIN"):
        import_label_studio(wrong)
