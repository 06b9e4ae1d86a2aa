"""Agreement with three or more annotators, stray annotations, and Label Studio gold answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

from planted_data import write_jsonl

from framework.annotation import AnnotationRecord
from framework.data import DataConfig, load_bundle, run_audit

LABELS = ("cat", "dog", "bird")


def _truth(n: int) -> list[str]:
    return [LABELS[(i * 7) % 3] for i in range(n)]


def _records(root: Path, n: int) -> None:
    write_jsonl(root / "train.jsonl", [{"id": f"i{i}", "text": f"item {i}", "label": t} for i, t in enumerate(_truth(n))])


def _four_annotators(n: int) -> list[dict]:
    """A, B and C agree on nearly everything; D labels at random."""
    rng = random.Random(0)
    lines = []
    for i, truth in enumerate(_truth(n)):
        for who in "ABC":
            label = truth if (i + ord(who)) % 13 else LABELS[(LABELS.index(truth) + 1) % 3]
            lines.append({"item_id": f"i{i}", "annotator": who, "label": label})
        lines.append({"item_id": f"i{i}", "annotator": "D", "label": rng.choice(LABELS)})
    return lines


def test_three_plus_annotators_get_a_pairwise_matrix_and_the_outlier_is_named(tmp_path: Path) -> None:
    _records(tmp_path, 60)
    write_jsonl(tmp_path / "ann.jsonl", _four_annotators(60))
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", annotations="ann.jsonl")
    report = run_audit(load_bundle(cfg), cfg, modality="t", out_dir=tmp_path / "audit")
    consistency = report.result("consistency")
    assert consistency.measured["method"] == "fleiss"
    pairwise = consistency.measured["pairwise"]
    assert set(pairwise) == set("ABCD") and pairwise["A"]["B"] > 0.7 and pairwise["A"]["D"] < 0.3
    assert pairwise["A"]["D"] == pairwise["D"]["A"]
    assert consistency.measured["outliers"] == ["D"]
    assert [f.items for f in consistency.findings if f.kind == "outlier_annotator"] == [("D",)]
    assert "annotator D: kappa vs consensus" in consistency.summary
    card = (tmp_path / "audit" / "datacard.md").read_text()
    assert "### Pairwise Cohen's kappa" in card and "| D | " in card
    assert "### Each annotator against the consensus" in card
    flagged = [line for line in card.splitlines() if "**far below the others**" in line]
    assert [line.split(" | ")[0] for line in flagged] == ["| D"]


def test_annotations_that_match_no_record_are_reported_and_left_out(tmp_path: Path) -> None:
    _records(tmp_path, 10)
    lines = [{"item_id": f"i{i}", "annotator": who, "label": t} for i, t in enumerate(_truth(10)) for who in "AB"]
    lines += [{"item_id": "img_0007", "annotator": who, "label": "cat"} for who in "AB"]  # no such record
    write_jsonl(tmp_path / "ann.jsonl", lines)
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", annotations="ann.jsonl")
    report = run_audit(load_bundle(cfg), cfg, modality="t", out_dir=tmp_path / "audit")
    consistency = report.result("consistency")
    assert consistency.measured["items"] == 10 and consistency.measured["unmatched_annotations"] == 2
    assert "2 of 22 annotations name 1 item id(s) that match no record, e.g. 'img_0007'" in consistency.summary
    assert "ann.jsonl:21" in consistency.summary
    assert "match no record" in (tmp_path / "audit" / "datacard.md").read_text()


def _task(i: int, labels: dict[str, str], truth: str | None = None, data: dict | None = None) -> dict:
    def ann(who: str, label: str, gt: bool = False) -> dict:
        return {"completed_by": who, "ground_truth": gt,
                "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}
    anns = [ann(w, lab) for w, lab in labels.items()] + ([ann("lead", truth, True)] if truth else [])
    return {"id": i, "data": {"text": f"item {i}", **(data or {})}, "annotations": anns}


def test_label_studio_ground_truth_annotations_are_gold(tmp_path: Path) -> None:
    tasks = [_task(i, {"A": "cat", "B": "cat" if i % 2 else "dog"}, truth="cat") for i in range(6)]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    cfg = DataConfig(root=str(tmp_path), train="export.json")
    bundle = load_bundle(cfg)
    assert bundle.extras["gold"] == {str(i): "cat" for i in range(6)}
    assert {a.annotator for a in bundle.annotations} == {"A", "B"}  # the key is not one more vote
    accuracy = run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "audit").result("accuracy")
    assert accuracy.measured["per_annotator"]["A"]["accuracy"] == 1.0
    assert accuracy.measured["per_annotator"]["B"]["accuracy"] == 0.5 and not accuracy.passed


def test_a_task_data_field_can_hold_the_gold_answer(tmp_path: Path) -> None:
    tasks = [_task(i, {"A": "cat", "B": "dog"}, data={"known": "dog"} if i < 3 else {}) for i in range(6)]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    write_jsonl(tmp_path / "train.jsonl", [{"id": str(i), "text": "x", "label": "cat"} for i in range(6)])
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", annotations="export.json", gold_field="known")
    bundle = load_bundle(cfg)
    assert bundle.extras["gold"] == {"0": "dog", "1": "dog", "2": "dog"}
    accuracy = run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "audit").result("accuracy")
    assert accuracy.measured["per_annotator"]["A"]["accuracy"] == 0.0


def test_the_data_card_says_when_no_gold_item_was_checked(tmp_path: Path) -> None:
    _records(tmp_path, 4)
    write_jsonl(tmp_path / "ann.jsonl", [{"item_id": f"i{i}", "annotator": w, "label": "cat"} for i in range(4) for w in "AB"])
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", annotations="ann.jsonl")
    run_audit(load_bundle(cfg), cfg, modality="t", out_dir=tmp_path / "audit")
    card = (tmp_path / "audit" / "datacard.md").read_text()
    assert "**No gold items**: annotator accuracy was not checked" in card
    AnnotationRecord("x", "y", "z")  # the public record type, for scripts
