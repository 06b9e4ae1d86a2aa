"""The out-of-tree example plugin honours the contract and runs end to end."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import framework_tabular.plugin
from framework import hookimpl
from framework.errors import FrameworkError
from framework.testing import assert_plugin_contract, contract_problems, prepared, run_framework


def test_example_plugin_honours_the_contract() -> None:
    assert_plugin_contract(framework_tabular.plugin)


class _BadModalityPlugin:
    @hookimpl
    def framework_modalities(self):  # type: ignore[no-untyped-def]
        return ["not a modality"]


def test_contract_kit_reports_problems() -> None:
    problems = contract_problems(_BadModalityPlugin())
    assert any("must return framework.Modality instances" in p for p in problems)


def test_prepared_gives_the_typed_sections_a_run_would_and_checks_the_config(tmp_path: Path) -> None:
    modality, ctx = prepared(["+modality=tabular", "model.hidden=[8]", "seed=5"], tmp_path / "run")
    assert type(modality).__name__ == "TabularModality" and type(ctx.modality).__name__ == "TabularConfig"
    assert type(ctx.model).__name__ == "MLPConfig" and ctx.model.hidden == [8] and ctx.model.dropout == 0.1
    assert ctx.seed == 5 and ctx.run_dir == tmp_path / "run" and ctx.run_dir.is_dir()
    assert "hidden:\n  - 8" in ctx.config_yaml  # the resolved config a run records
    assert len(modality.load_data(ctx).records("train")) > 0
    with pytest.raises(FrameworkError, match="unknown stage"):  # a run's checks, before any stage
        prepared(["+modality=tabular", "stages=[trian]"], tmp_path / "other")


def test_registers_its_format_through_the_hook_and_keeps_state_in_the_typed_context(tmp_path: Path) -> None:
    modality, ctx = prepared(["+modality=tabular", "model.hidden=[8]"], tmp_path / "run")
    entry = next(e for e in ctx.plugins.readers.entries() if e.name == "tabular_csv")
    assert entry.origin == "framework_tabular.data.read_tabular_csv"
    with warnings.catch_warnings():  # neither register_reader nor ctx.extras any more
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"framework_tabular\.")
        data = modality.load_data(ctx)
        ctx.classes = list(data.classes)  # what the core does after load_data
        task = modality.build_task(ctx, data)
        predictions = modality.predict(ctx, task, data.records("val"), "val")
    assert ctx.stash[framework_tabular.plugin.FEATURES] == data.extras["features"] and len(data.extras["features"]) == 13
    assert predictions.classes == data.classes and len(predictions.outputs) == len(data.records("val"))


@pytest.mark.slow
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


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A trained and evaluated run whose criteria it cannot all meet: accuracy must be at most
    0.5 (a trained MLP scores far above), and one criterion names a metric nothing reports."""
    run_dir = tmp_path_factory.mktemp("strict") / "run"
    result = run_framework(["+modality=tabular", "stages=[train,evaluate]", "trainer.max_steps=60",
                            "success.accuracy='<=0.5'", "+success.never_reported='>=0.1'"], run_dir)
    return result, run_dir


@pytest.mark.slow
def test_failed_success_criteria_say_not_fit_to_ship(strict_run) -> None:  # type: ignore[no-untyped-def]
    result, run_dir = strict_run
    assert result.status == "completed" and result.metrics["accuracy"] > 0.5
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fit_to_ship"] is False
    verdicts = {row["metric"]: row for row in summary["success"]}
    assert verdicts["accuracy"]["required"] == "<=0.5" and verdicts["accuracy"]["passed"] is False
    assert verdicts["min_class_recall"]["passed"] is (summary["metrics"]["min_class_recall"] >= 0.70)
    assert verdicts["never_reported"] == {"metric": "never_reported", "required": ">=0.1", "value": None,
                                          "passed": False}
    report = (run_dir / "report.md").read_text()
    assert "**Fit to ship: no**" in report
    assert "| never_reported | >= 0.1 | not reported | FAIL |" in report
    assert f"| accuracy | <= 0.5 | {result.metrics['accuracy']:.4f} | FAIL |" in report


@pytest.mark.slow
def test_evaluate_only_from_a_checkpoint_uses_its_weights(strict_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trained, run_dir = strict_run
    checkpoint = sorted((run_dir / "checkpoints").glob("step_*"))[-1]
    again = run_framework(["+modality=tabular", "stages=[evaluate]", f"checkpoint={checkpoint}",
                           "trainer.max_steps=60"], tmp_path / "b")
    # The same weights give the same figures; the untrained model these runs start from does not.
    assert again.metrics == trained.metrics
    untrained = run_framework(["+modality=tabular", "stages=[train,evaluate]", "trainer.max_steps=1",
                               "trainer.lr=1e-9"], tmp_path / "c")
    assert untrained.metrics["accuracy"] < trained.metrics["accuracy"]
