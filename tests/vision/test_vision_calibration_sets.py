"""A vision run with an extra evaluation set and temperature scaling: each reported beside val and
test, usable in ``success:``, and the temperature carried into the export that serves it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.testing import run_framework
from vision_fixtures import write_folder

FAST = ["+modality=vision", "model.image_size=16", "++model.kwargs.depth=1", "++model.kwargs.embed_dim=32",
        "trainer.epochs=6", "trainer.batch_size=8", "trainer.progress=false", "trainer.device=cpu",
        "data.gates.balance.min_per_class=1"]


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("calibrated")
    root = write_folder(tmp / "images", {"train": 16, "val": 20, "test": 6})
    write_folder(root / "extra", {"edge": 3}, seed=7)
    run = tmp / "run"
    result = run_framework([*FAST, f"data.root={root}", "evaluation.sets={edge: extra/edge}",
                            "evaluation.calibration.temperature_scaling=true",
                            '++success={edge/accuracy:">=0.5",test/ece:"<=1.0",edge/ece_scaled:"<=1.0"}'], run)
    assert result.status == "completed", result
    return run


@pytest.mark.slow
def test_extra_set_and_calibration_are_reported_and_checked(calibrated_run: Path) -> None:
    summary = json.loads((calibrated_run / "summary.json").read_text())
    metrics = summary["metrics"]
    assert summary["sets"]["edge"]["items"] == 9
    for name in ("edge/accuracy", "edge/ece", "edge/mce", "edge/ece_scaled", "ece", "test/ece", "test/ece_scaled",
                 "temperature"):
        assert name in metrics, name
    assert {v["metric"] for v in summary["success"] if v["passed"]} == {
        "accuracy", "min_class_recall", "edge/accuracy", "test/ece", "edge/ece_scaled"}
    html = (calibrated_run / "report.html").read_text()
    assert 'id="set-edge"' in html and "Calibration (<code>edge</code>)" in html
    assert "reliability_test.png" in html and "## Set `edge`" in (calibrated_run / "report.md").read_text()
    splits = [r["split"] for r in json.loads((calibrated_run / "eval" / "reports.json").read_text())["splits"]]
    assert splits == ["val", "test", "edge"]


@pytest.mark.slow
def test_export_serves_temperature_scaled_probabilities(calibrated_run: Path) -> None:
    from plugins.vision.export import load_task

    export = calibrated_run / "export"
    temperature = json.loads((export / "calibration.json").read_text())["temperature"]
    assert json.loads((export / "vision.json").read_text())["temperature"] == pytest.approx(temperature)
    assert temperature != pytest.approx(1.0)
    task = load_task(export)
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, 3, 16, 16), dtype=np.uint8))
    with torch.no_grad():
        expected = torch.softmax(task.logits(images) / temperature, dim=-1)
    served = torch.export.load(str(export / "model.pt2")).module()(images)
    assert torch.allclose(served, expected, atol=1e-5)
