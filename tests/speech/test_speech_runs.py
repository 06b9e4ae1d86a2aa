"""The speech modality through the real stages: contract, evaluate from a checkpoint, resume, sweep, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import plugins.speech.plugin
from framework.testing import assert_plugin_contract, run_framework
from framework.training import latest_checkpoint
from speech_fixtures import DIM_OVERRIDES, copy_corpus

FAST = ["modality.robustness_snr_db=[10.0]", "modality.sample_len=8", "trainer.batch_size=4", "trainer.eval_every=0",
        "trainer.progress=false", "trainer.log_every=1", *DIM_OVERRIDES]


def _args(root: Path, *extra: str) -> list[str]:
    return ["+modality=speech", f"data.root={root}", *FAST, *extra]


def _train_steps(run: Path) -> list[int]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if r["kind"] == "train"]


def test_plugin_contract() -> None:
    assert_plugin_contract(plugins.speech.plugin)


@pytest.mark.slow
def test_evaluate_from_a_checkpoint_and_resume(tmp_path: Path) -> None:
    root = copy_corpus(tmp_path / "corpus", {"train": 8, "val": 3, "test": 3})
    run = tmp_path / "run"
    first = run_framework(_args(root, "stages=[audit,train]", "trainer.max_steps=3"), run)
    assert first.status == "completed"
    assert (run / "audit" / "datacard.md").is_file() and (run / "speech.json").is_file()
    # Resume (trainer.resume=auto): the same run dir with a larger budget continues at step 4.
    again = run_framework(_args(root, "stages=[train]", "trainer.max_steps=5"), run)
    assert again.status == "completed" and _train_steps(run) == [1, 2, 3, 4, 5]
    checkpoint = latest_checkpoint(run)
    assert json.loads((checkpoint / "manifest.json").read_text())["step"] == 5
    # stages=[evaluate] checkpoint=...: a fresh run dir scores the checkpoint's weights; the same
    # weights pre-annotate untranscribed audio as Label Studio text tasks.
    rows = [json.loads(line) for line in (root / "val.jsonl").read_text().splitlines()]
    (root / "unlabeled.jsonl").write_text("".join(json.dumps({**r, "text": ""}) + "\n" for r in rows))
    result = run_framework(_args(root, "stages=[evaluate,preannotate,export]", f"checkpoint={checkpoint}",
                                 "data.unlabeled=unlabeled.jsonl"), tmp_path / "eval")
    assert result.status == "completed"
    for key in ("wer", "cer", "test/wer", "robust/snr_10db/wer"):
        assert key in result.metrics, key
    assert [v.criterion.metric for v in result.verdicts] == ["wer"]
    assert "wer" in (tmp_path / "eval" / "report.md").read_text()
    assert (tmp_path / "eval" / "export" / "model.pt").is_file()
    tasks = json.loads((tmp_path / "eval" / "annotation" / "preannotations.json").read_text())
    assert len(tasks) == 3 and "text" in tasks[0]["predictions"][0]["result"][0]["value"]


@pytest.mark.slow
def test_speech_sweep_writes_a_summary_ranked_by_wer(cli, tmp_path: Path) -> None:
    root = copy_corpus(tmp_path / "corpus", {"train": 8, "val": 3, "test": 3})
    sweep = tmp_path / "sweep"
    result = cli("-m", *_args(root, "evaluation.enforce_success=false", "trainer.lr=1e-3,1e-2", "trainer.max_steps=3", "stages=[train,evaluate]",
                              "evaluation.splits=[val]", f"hydra.sweep.dir={sweep}"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    wers = [float(r["wer"]) for r in rows]
    assert wers == sorted(wers)  # lower is better: best first
    assert "ranked by `wer` (lower is better)" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_speech_runs_from_the_command_line_and_transcribes_a_folder(cli, tmp_path: Path) -> None:
    import subprocess
    import sys

    root = copy_corpus(tmp_path / "corpus", {"train": 8, "val": 3, "test": 3})
    result = cli(*_args(root, "evaluation.enforce_success=false", "trainer.max_steps=2", "hydra.run.dir=run"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and "wer" in summary["metrics"]
    for artifact in ("audit/datacard.md", "report.md", "export/model.pt", "eval/hypotheses_val.csv"):
        assert (run / artifact).is_file(), artifact
    out = subprocess.run([sys.executable, "-m", "plugins.speech.transcribe", str(run / "export"),
                          str(root / "audio" / "test"), str(tmp_path / "t.csv")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len((tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()) == 4
