"""The production loop end to end, against a live Label Studio (the session's ``label_studio`` fixture).

train -> drift check on a shifted batch (red items now purple) -> its review sample pushed to Label Studio -> annotated
through the API by two reviewers -> pulled -> merged into a new training manifest -> retrained ->
the new run's reports show the merged items, and the error-rate history of a second shifted batch
shows the retrained model erring less than the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framework.annotation.__main__ import main as annotation_main
from framework.annotation.label_studio import load_tasks, parse_result
from framework.annotation.server import ServerSettings, connect, find_project
from framework.data.dataset_card import read_dataset_card
from framework.monitoring.__main__ import main as monitoring_main
from framework.testing import run_framework
from vision_fixtures import COLOURS, write_folder, write_image

pytestmark = pytest.mark.slow

FAST = ["+modality=vision", "model.image_size=16", "++model.kwargs.depth=1", "++model.kwargs.embed_dim=32",
        "trainer.epochs=6", "trainer.batch_size=8", "trainer.progress=false", "trainer.device=cpu",
        "data.gates.balance.min_per_class=1", "evaluation.enforce_success=false"]


# Production drifted: red items now come in purple, which the first model takes for blue.
SHIFTED = {**COLOURS, "red": (150, 40, 190)}


def _shifted_batch(folder: Path, per_class: int, seed: int) -> Path:
    """Labelled squares in the shifted colours, a little darker than training's, and their manifest."""
    rng = np.random.default_rng(seed)
    lines = []
    for name, colour in SHIFTED.items():
        for i in range(per_class):
            write_image(folder / name / f"{i:03d}.png", tuple(int(c * 0.8) for c in colour), rng)
            lines.append(json.dumps({"path": f"{name}/{i:03d}.png", "label": name}))
    (folder / "batch.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "batch.jsonl"


def _choice(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def test_review_sample_to_label_studio_and_back_into_training(label_studio, tmp_path, monkeypatch, capsys) -> None:
    for key, value in label_studio.env().items():
        monkeypatch.setenv(key, value)
    root = write_folder(tmp_path / "data", {"train": 12, "val": 8, "test": 6})
    first = tmp_path / "run1"
    assert run_framework([*FAST, f"data.root={root}"], first).status == "completed"

    # drift on the shifted batch; all of it goes to review (a real batch would send a few percent)
    reviewed_batch = _shifted_batch(label_studio.document_root / "week1", 8, seed=5)
    assert monitoring_main([str(first), str(reviewed_batch), "--review-share", "1.0"]) == 0
    queue = first / "monitor" / "review_tasks.json"
    assert json.loads((first / "monitor" / "drift.json").read_text())["drifted"]

    classes = ",".join(COLOURS)
    assert annotation_main(["push", str(queue), "--project", "colours week 1", "--classes", classes,
                            "--media-root", str(reviewed_batch.parent)]) == 0
    assert "24 tasks added to project 'colours week 1' (image_class)" in capsys.readouterr().out

    # two reviewers label every task with its true colour (the folder the image came from)
    client = connect(ServerSettings.from_env())
    project = find_project(client, "colours week 1")
    second = client.users.create(email="second-reviewer@example.com", username="second-reviewer")
    for task in client.tasks.list(project=project.id, fields="all"):
        truth = task.data["item_id"].split("/")[0]
        client.annotations.create(id=task.id, result=_choice(truth))
        client.annotations.create(id=task.id, result=_choice(truth), completed_by=second.id)

    pulled = tmp_path / "week1_reviewed.json"
    assert annotation_main(["pull", "--project", "colours week 1", "--out", str(pulled)]) == 0
    tasks = load_tasks(pulled)
    assert len(tasks) == 24
    wrong = sum(parse_result(t["predictions"][0]["result"]) != t["data"]["item_id"].split("/")[0] for t in tasks)

    manifest = root / "corrections" / "week1" / "train.jsonl"
    assert annotation_main(["merge", str(first), str(pulled), "--out", str(manifest)]) == 0
    said = capsys.readouterr().out
    assert "24 items added, 0 relabelled, 0 refused" in said and "agreement over 24 items" in said
    assert read_dataset_card(root).merges[-1]["added"] == 24

    second_run = tmp_path / "run2"
    assert run_framework([*FAST, f"data.root={root}", f"data.train={manifest}"], second_run).status == "completed"
    report = (second_run / "report.md").read_text()
    assert "## Merged corrections" in report
    assert f"24 training items came from review ({wrong} with a label that differs" in report
    assert "| `week1_reviewed.json` | 24 |" in report
    assert 'id="merged"' in (second_run / "report.html").read_text()
    assert "## Merged corrections" in (second_run / "audit" / "datacard.md").read_text()

    assert wrong >= 4, "the first model should have mistaken purple for another colour"
    # the error-rate history of the deployment: a second shifted batch, scored before and after
    held_out = _shifted_batch(tmp_path / "week2", 6, seed=9)
    assert monitoring_main(["evaluate", str(first), str(held_out), "--name", "before", "--max-increase", "error_rate=1"]) == 0
    assert monitoring_main(["evaluate", str(first), str(held_out), "--name", "retrained", "--weights",
                            str(second_run / "export"), "--max-increase", "error_rate=1"]) == 0
    history = [json.loads(line) for line in (first / "monitor" / "history.jsonl").read_text().splitlines()]
    scored = [h for h in history if h["kind"] == "evaluate"]
    assert [h["batch"] for h in scored] == ["before", "retrained"]
    assert Path(scored[1]["weights"]) == second_run / "export"
    before, after = (h["rates"]["error_rate"]["rate"] for h in scored)
    assert after < before, f"the retrained model should err less on the shifted batch ({before} -> {after})"
