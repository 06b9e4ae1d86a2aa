"""Checks that need the trained model (``needs_model``): pending before training, run with the
model afterwards, their results in the same audit.json and data card, gates enforced again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.data import CheckResult, DataConfig, GateFailure, enforce, run_audit, run_model_checks
from framework.data.config import GatesConfig
from framework.data.records import DataBundle, Record


class ScoresWithTheModel:
    """Passes when the model's score of the data reaches ``min``; records what it was given."""

    name = "model_scores"
    needs_model = True

    def __init__(self) -> None:
        self.seen: list[object] = []

    def run(self, data, ctx):
        self.seen.append(ctx.model)
        score = ctx.model(len(data.records()))
        need = ctx.settings.get("min", 0)
        return CheckResult(self.name, score >= need, gate=True, summary=f"model score {score} vs min {need}",
                           measured={"score": score})


def _bundle(root: Path) -> DataBundle:
    return DataBundle(root, {"train": [Record(id=str(i), split="train", source=f"m:{i}", text=f"item {i}")
                                       for i in range(3)]})


def test_pending_before_training_then_scored_with_the_model(tmp_path: Path) -> None:
    check = ScoresWithTheModel()
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl")
    out = tmp_path / "audit"
    report = run_audit(_bundle(tmp_path), cfg, modality="toy", extra_checks=[check], out_dir=out)
    assert check.seen == [] and report.pending == [check]
    pending = report.result("model_scores")
    assert pending.passed and not pending.gate and pending.measured == {"pending": True}
    assert "pending" in (out / "datacard.md").read_text()

    run_model_checks(report, _bundle(tmp_path), cfg, modality="toy", model=lambda n: 10 * n, out_dir=out)
    assert report.pending == [] and len(check.seen) == 1
    assert report.result("model_scores").measured == {"score": 30}
    saved = json.loads((out / "audit.json").read_text())
    assert [r["measured"] for r in saved["results"] if r["name"] == "model_scores"] == [{"score": 30}]
    assert "model score 30 vs min 0" in (out / "datacard.md").read_text()
    assert [r.name for r in report.results].count("model_scores") == 1  # replaced, not appended


def test_a_failed_model_gate_is_enforced_like_any_gate(tmp_path: Path) -> None:
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", gates=GatesConfig(plugins={"model_scores": {"min": 100}}))
    report = run_audit(_bundle(tmp_path), cfg, modality="toy", extra_checks=[ScoresWithTheModel()],
                       out_dir=tmp_path / "audit")
    enforce(report)  # pending: nothing to enforce yet
    run_model_checks(report, _bundle(tmp_path), cfg, modality="toy", model=lambda n: n, out_dir=tmp_path / "audit")
    assert not report.passed
    with pytest.raises(GateFailure, match="model score 3 vs min 100"):
        enforce(report)
