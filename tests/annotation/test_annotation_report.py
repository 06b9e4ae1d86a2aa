"""``python -m framework.annotation report``: the figures from an export whose media are not on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.annotation.__main__ import main


def _choice(who: str, label: str, gt: bool = False) -> dict:
    return {"completed_by": {"email": who}, "ground_truth": gt,
            "result": [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]}


def _export(path: Path) -> Path:
    tasks = []
    for i in range(12):
        truth = "cat" if i % 2 else "dog"
        other = "dog" if truth == "cat" else "cat"
        anns = [_choice("a@x", truth), _choice("b@x", truth if i != 3 else other), _choice("c@x", other if i % 3 else truth)]
        if i < 4:
            anns.append(_choice("lead@x", truth, gt=True))
        tasks.append({"id": 100 + i, "data": {"image": f"/data/local-files/?d=gone/{i}.png"}, "annotations": anns})
    path.write_text(json.dumps(tasks))
    return path


def test_report_from_an_export_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = _export(tmp_path / "export.json")
    (tmp_path / "gold.jsonl").write_text(json.dumps({"id": "111", "label": "cat"}) + "\n")
    assert main(["report", str(export), "--gold", str(tmp_path / "gold.jsonl"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "36 annotations on 12 items by 3 annotators" in printed  # the ground truth is not a fourth vote
    assert "Agreement: Fleiss' kappa" in printed
    assert "### Pairwise Cohen's kappa" in printed and "| c@x |" in printed
    assert "5 gold items." in printed  # four ground-truth annotations and one line of gold.jsonl
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["gold_accuracy"]["a@x"] == {"correct": 5, "total": 5, "accuracy": 1.0}
    assert report["gold_accuracy"]["b@x"]["correct"] == 4
    assert "c@x" in report["outliers"]
    lines = (tmp_path / "out" / "adjudication.jsonl").read_text().splitlines()
    assert len(lines) == 12 and {"item_id", "majority", "dawid_skene", "tie"} <= set(json.loads(lines[0]))
    review = json.loads((tmp_path / "out" / "review_tasks.json").read_text())
    assert review and all(t["data"]["image"].startswith("/data/local-files/") for t in review)
    assert any("failed_gold" in t["meta"]["review_reasons"] for t in review)


def test_report_without_gold_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [{"item_id": f"i{k}", "annotator": who, "label": "x"} for k in range(3) for who in "AB"]
    (tmp_path / "ann.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert main(["report", str(tmp_path / "ann.jsonl"), "--out", str(tmp_path / "o")]) == 0
    assert "**No gold items**" in capsys.readouterr().out


def test_a_bad_export_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "bad.json:1: not valid JSON" in err and "\n" not in err


def test_the_audit_keeps_the_annotations_of_tasks_whose_media_are_missing(tmp_path: Path) -> None:
    from framework.data import DataConfig, load_bundle, run_audit

    _export(tmp_path / "export.json")
    cfg = DataConfig(root=str(tmp_path), train="export.json")
    bundle = load_bundle(cfg)
    assert bundle.records("train") == [] and len(bundle.quarantine) == 12  # every image is missing
    assert len(bundle.annotations) == 36
    report = run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "audit")
    consistency = report.result("consistency")
    assert consistency.measured["items"] == 12 and consistency.measured["unmatched_annotations"] == 0
    assert "split 'train' has 0 records" in report.result("coverage").summary



def test_counts_of_one_are_singular() -> None:
    from framework.annotation.report import AnnotationSummary, render

    one = AnnotationSummary(annotations=1, items=1, annotators=1,
                            agreement={"method": "none", "value": float("nan"), "items": 1, "annotators": 1})
    text = render(one, "export.json")
    assert "1 annotation on 1 item by 1 annotator;" in text and "1 item has 2+ labels" in text
    assert "over 1 item and 1 annotator." in text and "1 items" not in text
