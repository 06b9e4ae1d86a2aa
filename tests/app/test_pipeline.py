"""One run as data: which stage objects run for which ``stages=[...]``, in what order."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.app import PIPELINE, prepare
from framework.plugins import load_plugins
from framework.stage import Run
from framework.testing import compose


def _run(tmp_path: Path, *overrides: str) -> Run:
    cfg = compose(["+modality=tabular", *overrides])
    return prepare(cfg, tmp_path, load_plugins(), list(overrides))


def _planned(job: Run) -> list[str]:
    return [stage.name for stage in PIPELINE if stage.applies(job)]


def test_prepare_builds_one_typed_run_from_the_config(tmp_path: Path) -> None:
    from framework.config import FrameworkConfig
    from framework.training.config import TrainerConfig

    job = _run(tmp_path, "trainer.lr=0.01", "stages=[audit,train]")
    assert isinstance(job.config, FrameworkConfig) and isinstance(job.config.trainer, TrainerConfig)
    assert job.config.trainer.lr == 0.01
    assert job.stages == ("audit", "train")
    assert job.ctx.data is job.config.data and job.ctx.modality is job.config.modality
    assert job.info.run_dir == tmp_path and job.info.is_main


def test_default_stages_plan(tmp_path: Path) -> None:
    job = _run(tmp_path)
    assert _planned(job) == ["load", "audit", "build", "train", "evaluate", "export", "report"]


def test_evaluate_without_train_loads_trained_weights(tmp_path: Path) -> None:
    job = _run(tmp_path, "stages=[evaluate]")
    assert _planned(job) == ["load", "build", "load weights", "evaluate", "report"]


def test_audit_only_builds_no_task(tmp_path: Path) -> None:
    job = _run(tmp_path, "stages=[audit]")
    assert _planned(job) == ["load", "audit"]


def test_retention_and_preannotate_join_when_configured(tmp_path: Path) -> None:
    job = _run(tmp_path, "stages=[train,evaluate,preannotate]", "evaluation.retention=retain.jsonl")
    assert _planned(job) == ["load", "build", "retention (starting weights)", "train", "evaluate",
                             "preannotate", "report"]


def test_only_the_main_process_evaluates_and_exports(tmp_path: Path) -> None:
    import dataclasses

    job = _run(tmp_path)
    job.info = dataclasses.replace(job.info, rank=1, world_size=2)
    assert _planned(job) == ["load", "audit", "build", "train"]


def test_a_stage_reading_what_no_stage_made_says_so(tmp_path: Path) -> None:
    from framework.stage import BuildTask

    job = _run(tmp_path)
    with pytest.raises(RuntimeError, match="run.data is not set"):
        BuildTask()(job)


def test_prepare_refuses_remote_code_that_no_command_line_asked_for(tmp_path: Path, monkeypatch) -> None:
    from framework.errors import FrameworkError

    monkeypatch.delenv("FRAMEWORK_TRUST_REMOTE_CODE", raising=False)
    cfg = compose(["+modality=text", "model.trust_remote_code=true"])  # as if a config file had set it
    with pytest.raises(FrameworkError, match="model.trust_remote_code: true comes from a config file"):
        prepare(cfg, tmp_path, load_plugins(), [])
    job = prepare(cfg, tmp_path, load_plugins(), ["model.trust_remote_code=true"])  # typed by its user
    assert job.config.model.trust_remote_code is True
