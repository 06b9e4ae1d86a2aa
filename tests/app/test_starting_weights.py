"""``stages=[evaluate]`` (or ``[preannotate]``) without a checkpoint evaluates the configured model as
built, labelled "starting weights, not trained" in report.md, report.html and summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.stage import STARTING_WEIGHTS, TRAINED_WEIGHTS
from framework.testing import run_framework

TAB = ["+modality=tabular", "trainer.progress=false"]


@pytest.mark.slow
def test_evaluate_without_a_checkpoint_scores_the_starting_weights_and_says_so(tmp_path: Path) -> None:
    start = run_framework([*TAB, "stages=[evaluate]"], tmp_path / "start")
    assert start.status == "completed" and start.weights == STARTING_WEIGHTS
    summary = json.loads((tmp_path / "start" / "summary.json").read_text())
    assert summary["weights"] == STARTING_WEIGHTS and summary["metrics"] == start.metrics
    assert f"Weights evaluated: **{STARTING_WEIGHTS}**" in (tmp_path / "start" / "report.md").read_text()
    assert STARTING_WEIGHTS in (tmp_path / "start" / "report.html").read_text()
    # The same model, the same seed, one step at learning rate 0: the same weights, the same figures.
    zero = run_framework([*TAB, "stages=[train,evaluate]", "trainer.max_steps=1", "trainer.lr=0",
                          "trainer.weight_decay=0"], tmp_path / "zero")
    assert zero.weights == TRAINED_WEIGHTS
    assert zero.metrics == pytest.approx(start.metrics)


def test_a_checkpoint_is_named_as_the_weights_evaluated(tmp_path: Path) -> None:
    from framework.training import latest_checkpoint

    assert run_framework([*TAB, "stages=[train]", "trainer.max_steps=2"], tmp_path / "train").status == "completed"
    checkpoint = latest_checkpoint(tmp_path / "train")
    result = run_framework([*TAB, "stages=[evaluate]", f"checkpoint={checkpoint}"], tmp_path / "eval")
    assert result.weights == f"checkpoint {checkpoint}"


def test_preannotate_without_a_checkpoint_uses_the_starting_weights(tmp_path: Path) -> None:
    result = run_framework([*TAB, "stages=[preannotate]", "data.unlabeled=test.csv"], tmp_path / "run")
    assert result.status == "completed" and result.weights == STARTING_WEIGHTS
    assert (tmp_path / "run" / "annotation" / "preannotations.json").is_file()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["weights"] == STARTING_WEIGHTS


def test_export_still_needs_trained_weights(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="export without the train stage needs trained weights"):
        run_framework([*TAB, "stages=[evaluate,export]"], tmp_path / "run")
