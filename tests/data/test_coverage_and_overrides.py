"""Coverage fails on empty splits and missing labels; a failed gate's override names only what failed."""

from __future__ import annotations

import json
from pathlib import Path

from planted_data import make_image, write_jsonl

from framework.data import DataConfig, load_bundle, run_audit
from framework.data.checks import CheckContext
from framework.data.gates import CleanlinessGate, CoverageGate
from framework.data.records import DataBundle, Record


def _ctx(label_type: str = "class", settings: dict | None = None) -> CheckContext:
    return CheckContext(modality="t", settings=settings or {}, slice_fields=(), out_dir=Path("."), label_type=label_type)


def test_an_empty_training_split_fails_the_audit(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("\n\n")
    write_jsonl(tmp_path / "val.jsonl", [{"text": "x", "label": "a"}])
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl", val="val.jsonl"))
    report = run_audit(bundle, DataConfig(root=str(tmp_path)), modality="t", out_dir=tmp_path / "audit")
    assert not report.passed
    coverage = report.result("coverage")
    assert not coverage.passed and "split 'train' has 0 records (needs >= 1)" in coverage.summary
    assert "data.gates.coverage.min_records" in coverage.override
    assert "Gates: **FAILED**" in (tmp_path / "audit" / "datacard.md").read_text()


def test_a_manifest_without_labels_fails_when_the_modality_needs_labels(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"item {i}"} for i in range(4)] + [{"text": "y", "label": "a"}])
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl"))
    result = CoverageGate().run(bundle, _ctx("class"))
    assert not result.passed
    assert "split 'train': 4 of 5 records have no label (label_type 'class' needs one)" in result.summary
    assert "train.jsonl:1" in result.summary  # where to look
    assert CoverageGate().run(bundle, _ctx("none")).passed  # an unlabeled modality does not need them
    assert CoverageGate().run(bundle, _ctx("class", {"max_unlabeled_fraction": 0.8})).passed


def test_run_audit_passes_the_label_type_to_the_gates(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a"}, {"text": "b"}])
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl"))
    cfg = DataConfig(root=str(tmp_path))
    assert not run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "a1", label_type="text").passed
    assert run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "a2", label_type="none").result("coverage").passed


def test_cleanliness_override_lists_only_the_limits_that_failed(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", seed=1)
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    records = [Record("a", "train", "m:1", media=tmp_path / "a.png", label="x"),
               Record("b", "train", "m:2", media=tmp_path / "b.png", label="x")]
    result = CleanlinessGate().run(DataBundle(tmp_path, {"train": records}), _ctx())
    assert not result.passed
    assert "data.gates.cleanliness.max_duplicate_fraction" in result.override
    for passed_key in ("max_leaked", "max_corrupt_fraction", "max_empty_label_fraction"):
        assert passed_key not in result.override, result.override
    json.dumps(result.measured, default=str)


def test_a_bundle_may_declare_its_own_label_type_for_the_coverage_gate(tmp_path) -> None:
    from framework.data.audit import run_audit
    from framework.data.records import DataBundle, Record
    from omegaconf import OmegaConf
    from framework.config import DataConfig

    records = [Record(id=f"p{i}", split="train", source=f"pairs.jsonl:{i}", text=f"prompt {i}", fields={"chosen": "a", "rejected": "b"})
               for i in range(1, 4)]
    cfg = OmegaConf.structured(DataConfig(sources=["hand-written pairs"]))
    bundle = DataBundle(root=tmp_path, splits={"train": records})
    as_text = run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "a", label_type=bundle.label_type_for("text"))
    bundle.label_type = "preference"
    as_pairs = run_audit(bundle, cfg, modality="t", out_dir=tmp_path / "b", label_type=bundle.label_type_for("text"))
    coverage = {r.name: r for r in as_text.results}["coverage"], {r.name: r for r in as_pairs.results}["coverage"]
    assert not coverage[0].passed and "3 of 3 records have no label" in coverage[0].summary
    assert coverage[1].passed
