"""The out-of-tree example plugin honours the contract and runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import framework_tabular.plugin
from framework import hookimpl
from framework.testing import assert_plugin_contract, contract_problems, run_framework


def test_example_plugin_honours_the_contract() -> None:
    assert_plugin_contract(framework_tabular.plugin)


class _BadModalityPlugin:
    @hookimpl
    def framework_modalities(self):  # type: ignore[no-untyped-def]
        return ["not a modality"]


def test_contract_kit_reports_problems() -> None:
    problems = contract_problems(_BadModalityPlugin())
    assert any("must return framework.Modality instances" in p for p in problems)


def test_default_run_end_to_end(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["metrics"]["accuracy"] >= 0.85  # the bundled wine data is easy for an MLP
    assert summary["fit_to_ship"] is True
    for artifact in ("audit/datacard.md", "audit/audit.json", "report.md", "metrics.jsonl",
                     ".hydra/config.yaml", "export/model.safetensors"):
        assert (run / artifact).is_file(), artifact
    assert "Fit to ship: yes" in (run / "report.md").read_text()
    assert list((run / "checkpoints").glob("step_*/manifest.json"))


def test_audit_stage_alone_writes_the_data_card(tmp_path: Path) -> None:
    result = run_framework(["+modality=tabular", "stages=[audit]"], tmp_path)
    assert result.status == "completed"
    card = (tmp_path / "audit" / "datacard.md").read_text()
    assert "constant_features" in card  # the plugin's own check is in the card
    assert not (tmp_path / "checkpoints").exists()


def test_failed_gate_refuses_to_train(tmp_path: Path) -> None:
    result = run_framework(["+modality=tabular", "data.gates.balance.min_per_class=500"], tmp_path)
    assert result.status == "refused" and "balance" in result.message
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "refused"
    assert not (tmp_path / "checkpoints").exists()


def test_evaluate_only_from_a_checkpoint(tmp_path: Path) -> None:
    first = run_framework(["+modality=tabular", "stages=[train]", "trainer.max_steps=20"], tmp_path / "a")
    assert first.status == "completed"
    checkpoint = sorted((tmp_path / "a" / "checkpoints").glob("step_*"))[-1]
    second = run_framework(["+modality=tabular", "stages=[evaluate]", f"checkpoint={checkpoint}"], tmp_path / "b")
    assert "accuracy" in second.metrics
