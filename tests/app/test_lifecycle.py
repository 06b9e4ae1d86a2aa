"""Whole-run behaviour through the real entry point: signals and resume, torchrun, annotation round trips."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.config import package_path
from framework.testing import run_framework
from framework.training import latest_checkpoint

WINE = Path(package_path("framework_tabular/data"))


def _steps(metrics_file: Path) -> list[int]:
    if not metrics_file.exists():
        return []
    rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    return [row["step"] for row in rows if row.get("kind", row.get("split")) == "train"]


@pytest.mark.slow
def test_sigterm_saves_exits_cleanly_and_the_run_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [sys.executable, "-m", "framework", "+modality=tabular", "stages=[train]", f"hydra.run.dir={run}",
            "trainer.epochs=100000", "trainer.log_every=5"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not _steps(run / "metrics.jsonl") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    checkpoint = latest_checkpoint(run)
    assert checkpoint is not None
    stopped_at = json.loads((checkpoint / "manifest.json").read_text())["step"]
    assert stopped_at > 0

    # The same command with a step budget continues from the checkpoint (trainer.resume=auto).
    target = stopped_at + 7
    resumed = subprocess.run([*args[:-2], f"trainer.max_steps={target}", "trainer.log_every=1"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((latest_checkpoint(run) / "manifest.json").read_text())["step"] == target
    new_steps = [s for s in _steps(run / "metrics.jsonl") if s > stopped_at]
    assert new_steps[0] == stopped_at + 1 and new_steps[-1] == target


@pytest.mark.slow
def test_torchrun_two_processes_share_one_run_dir(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("FRAMEWORK_RUN_ID", None)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "framework", "+modality=tabular",
         "trainer.max_steps=12", "stages=[train,evaluate]", "evaluation.enforce_success=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run_dirs = list((tmp_path / "outputs" / "tabular").iterdir())
    assert len(run_dirs) == 1, run_dirs  # every rank agreed on one run dir
    run = run_dirs[0]
    checkpoint = latest_checkpoint(run)
    assert checkpoint is not None and json.loads((checkpoint / "manifest.json").read_text())["step"] == 12
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and "accuracy" in summary["metrics"]
    assert list(summary["seconds"]) == ["load", "build", "train", "evaluate", "report"]  # pipeline order
    assert all(t >= 0 for t in summary["seconds"].values())


@pytest.mark.slow
def test_multirun_under_torchrun_is_refused(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("-m", "+modality=tabular", "trainer.lr=1e-3,2e-3", env={"WORLD_SIZE": "2", "RANK": "0"})
    assert result.returncode != 0
    assert "submitit" in result.stderr


def _copy_wine(dst: Path) -> Path:
    shutil.copytree(WINE, dst)
    return dst


def test_preannotate_exports_label_studio_predictions(tmp_path: Path) -> None:
    data = _copy_wine(tmp_path / "data")
    with (data / "test.csv").open() as src, (data / "unlabeled.csv").open("w", newline="") as dst:
        rows = list(csv.DictReader(src))
        writer = csv.DictWriter(dst, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "id": "u-" + row["id"], "label": ""} for row in rows)
    result = run_framework(["+modality=tabular", f"data.root={data}", "data.unlabeled=unlabeled.csv",
                            "stages=[train,preannotate]", "trainer.max_steps=60"], tmp_path / "run")
    assert result.status == "completed"
    tasks = json.loads((tmp_path / "run" / "annotation" / "preannotations.json").read_text())
    assert len(tasks) == len(rows)
    prediction = tasks[0]["predictions"][0]
    assert 0.0 < prediction["score"] <= 1.0
    assert prediction["result"][0]["value"]["choices"][0].startswith("cultivar_")


def test_audit_exports_disagreements_for_review(tmp_path: Path) -> None:
    data = _copy_wine(tmp_path / "data")
    with (data / "train.csv").open() as handle:
        ids = [row["id"] for row in csv.DictReader(handle)][:6]
    lines = []
    for i, item in enumerate(ids):
        lines.append({"item_id": item, "annotator": "ann_a", "label": "cultivar_0"})
        lines.append({"item_id": item, "annotator": "ann_b", "label": "cultivar_0" if i < 4 else "cultivar_1"})
    (data / "annotations.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run_framework(["+modality=tabular", f"data.root={data}", "data.annotations=annotations.jsonl",
                            "stages=[audit]", "data.gates.enforce=false"], tmp_path / "run")
    assert result.status == "completed"
    tasks = json.loads((tmp_path / "run" / "audit" / "review_tasks.json").read_text())
    assert len(tasks) == 2  # the two items the annotators disagree on
    assert all("disagreement" in t["meta"]["review_reasons"] for t in tasks)
    assert {a["completed_by"] for t in tasks for a in t["annotations"]} >= {"ann_a", "ann_b"}
    card = (tmp_path / "run" / "audit" / "datacard.md").read_text()
    assert "consistency" in card


@pytest.mark.slow
def test_vision_runs_from_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=vision", "trainer.max_steps=3", "hydra.run.dir=run", timeout=600)
    # Three steps cannot reach the default criteria: exit code 3 (not fit to ship), everything written.
    assert result.returncode == 3, result.stderr[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and "accuracy" in summary["metrics"]
    assert summary["fit_to_ship"] is False
    for artifact in ("audit/datacard.md", "report.md", "report.html", "export/model.safetensors"):
        assert (run / artifact).is_file(), artifact


def test_label_issues_from_supplied_probabilities_reach_the_data_card(tmp_path: Path) -> None:
    data = _copy_wine(tmp_path / "data")
    with (data / "train.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    classes = sorted({row["label"] for row in rows})
    flipped = {rows[0]["id"], rows[1]["id"]}  # the model is confident these two are another class
    lines = []
    for row in rows:
        k = classes.index(row["label"])
        if row["id"] in flipped:
            k = (k + 1) % len(classes)
        probs = [0.9 if j == k else 0.1 / (len(classes) - 1) for j in range(len(classes))]
        lines.append(json.dumps({"id": row["id"], "probs": probs}))
    (data / "probs.jsonl").write_text("\n".join(lines) + "\n")
    result = run_framework(["+modality=tabular", f"data.root={data}", "data.pred_probs=probs.jsonl",
                            "stages=[audit]"], tmp_path / "run")
    assert result.status == "completed"  # label issues are a warning, not a gate
    audit = json.loads((tmp_path / "run" / "audit" / "audit.json").read_text())
    check = next(r for r in audit["results"] if r["name"] == "label_issues")
    assert {item for f in check["findings"] for item in f["items"]} == flipped


def test_malformed_probabilities_name_the_line(tmp_path: Path) -> None:
    from framework.data.errors import DataError

    data = _copy_wine(tmp_path / "data")
    (data / "probs.jsonl").write_text('{"id": "wine-002", "probs": [0.5, 0.5, 0.5]}\n')
    with pytest.raises(DataError, match=r"probs.jsonl:1: 'probs' sums to 1.5000"):
        run_framework(["+modality=tabular", f"data.root={data}", "data.pred_probs=probs.jsonl", "stages=[audit]"],
                      tmp_path / "run")
