"""Whole runs, in process: reproducible seeds, one process per run dir, honest resume, fail-fast checks."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework.errors import FrameworkError
from framework.testing import run_framework
from framework.training import latest_checkpoint

TAB = ["+modality=tabular", "trainer.max_steps=4", "trainer.log_every=1", "trainer.progress=false"]


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time", None)
        row.get("metrics", {}).pop("items_per_s", None)
        row.pop("path", None)
        row.pop("name", None)  # the run dir's name
    return rows


def _weights(run: Path) -> bytes:
    return (latest_checkpoint(run) / "model.safetensors").read_bytes()


def test_same_config_twice_gives_identical_weights_and_metrics_tabular(tmp_path: Path) -> None:
    for name in ("a", "b"):
        run_framework([*TAB, "stages=[train]"], tmp_path / name)
    assert _weights(tmp_path / "a") == _weights(tmp_path / "b")
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for label, colour in (("red", (200, 30, 30)), ("blue", (40, 50, 210))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.mark.slow
def test_same_config_twice_gives_identical_weights_and_metrics_vision(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "images")
    args = ["+modality=vision", "stages=[train]", f"data.root={root}", "data.test=null", "model.image_size=16",
            "++model.kwargs.depth=1", "++model.kwargs.embed_dim=32", "trainer.max_steps=3", "trainer.batch_size=4",
            "trainer.log_every=1", "trainer.progress=false", "data.gates.enforce=false"]
    for name in ("a", "b"):
        run_framework(args, tmp_path / name)
    assert _weights(tmp_path / "a") == _weights(tmp_path / "b")
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")


def test_default_run_ids_are_unique_for_jobs_started_together_and_sorted_by_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from framework import config

    monkeypatch.setattr(config.time, "time", lambda: 1_790_000_000.25)  # three jobs, one instant
    together = [config.new_run_id() for _ in range(3)]
    assert len(set(together)) == 3, together
    monkeypatch.setattr(config.time, "time", lambda: 1_790_000_000.5)
    later = config.new_run_id()
    assert all(later > i for i in together)  # lexical order is start order


_HOLD = ("import sys, time; from framework.training.rundir import lock_run_dir; lock_run_dir(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(120)")


def _holder(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.slow
def test_a_live_run_dir_is_refused_and_a_stale_lock_is_taken_over(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    proc = _holder(run)
    try:
        with pytest.raises(FrameworkError, match=f"in use by another process \\(pid {proc.pid} "):
            run_framework([*TAB, "stages=[audit]"], run)
    finally:
        proc.kill()  # SIGKILL: the lock is left behind with its owner record
        proc.wait()
    run_framework([*TAB, "stages=[audit]"], run)
    assert any(f"taking over the lock left by pid {proc.pid}" in r.message for r in caplog.records)
    assert not (run / ".lock.owner").exists()  # released at the end of the run


def test_resume_with_a_changed_setting_names_it_and_a_new_budget_continues(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_framework([*TAB, "stages=[train]"], run)
    with pytest.raises(FrameworkError, match=r"differs in trainer.lr .*trainer.init_from="):
        run_framework([*TAB, "stages=[train]", "trainer.lr=0.01"], run)
    run_framework([*TAB, "stages=[train]", "trainer.max_steps=6"], run)
    assert json.loads((latest_checkpoint(run) / "manifest.json").read_text())["step"] == 6


def test_resume_onto_data_changed_in_place_is_refused_unless_allowed(tmp_path: Path) -> None:
    import shutil

    from framework_tabular import plugin as tabular

    data = tmp_path / "data"
    shutil.copytree(Path(tabular.__file__).parent / "data", data)
    args = [*TAB, "stages=[train]", f"data.root={data}"]
    run = tmp_path / "run"
    run_framework(args, run)
    train = data / "train.csv"
    lines = train.read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    label = header.index("label")
    first[label] = next(line.split(",")[label] for line in lines[2:] if line.split(",")[label] != first[label])
    train.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")  # one label edited in place
    with pytest.raises(FrameworkError, match=r"the data changed since it was written: train \(checkpoint \d+ records"):
        run_framework([*args, "trainer.max_steps=6"], run)
    run_framework([*args, "trainer.max_steps=6", "trainer.allow_data_change=true"], run)
    assert json.loads((latest_checkpoint(run) / "manifest.json").read_text())["step"] == 6


def test_evaluate_from_a_checkpoint_verifies_its_manifest(tmp_path: Path) -> None:
    run_framework([*TAB, "stages=[train]"], tmp_path / "run")
    ckpt = latest_checkpoint(tmp_path / "run")
    weights = ckpt / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one flipped bit-pattern in the weights
    weights.write_bytes(bytes(data))
    with pytest.raises(FrameworkError, match="model.safetensors does not match its sha256"):
        run_framework(["+modality=tabular", "stages=[evaluate]", f"checkpoint={ckpt}"], tmp_path / "eval")


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.epochs=-1", "trainer.epochs=-1 is invalid: use an integer >= 1"),
    ("trainer.precision=fp7", "trainer.precision='fp7' is invalid: use one of auto, fp32, bf16, fp16"),
    ("trainer.batch_size=0", "trainer.batch_size=0 is invalid"),
    ("trainer.lr=-1", "trainer.lr=-1.0 is invalid: use a finite number >= 0"),
    ("trainer.accumulate=0", "trainer.accumulate=0 is invalid"),
    ("trainer.schedule=cosin", "use one of cosine, linear, constant"),
])
@pytest.mark.slow
def test_bad_trainer_values_fail_before_any_work(tmp_path: Path, override: str, expected: str) -> None:
    with pytest.raises(FrameworkError) as err:
        run_framework(["+modality=tabular", override], tmp_path / "run")
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run" / "audit").exists()  # nothing ran


def test_unusable_run_dirs_and_missing_data_root_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(FrameworkError, match="cannot create the run dir"):
        run_framework([*TAB, "stages=[audit]"], blocker / "run")
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("")
    with pytest.raises(FrameworkError, match="checkpoints exists and is not a directory"):
        run_framework([*TAB, "stages=[train]"], run)
    with pytest.raises(FrameworkError, match="data.root=/nonexistent: .* does not exist"):
        run_framework([*TAB, "stages=[audit]", "data.root=/nonexistent"], tmp_path / "other")


def test_an_exception_inside_a_modality_method_is_framed(tmp_path: Path) -> None:
    from framework.app import ModalityFailure

    run = tmp_path / "run"
    with pytest.raises(ModalityFailure) as err:
        run_framework([*TAB, "stages=[train]", "model.hidden=[-1]"], run)
    message = str(err.value)
    assert re.match(r"modality tabular \(package framework[-_]tabular\) failed in build_task: RuntimeError", message)
    assert "\n" not in message and "run.log" in message
    assert "Traceback (most recent call last)" in (run / "run.log").read_text()
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"


def test_artifacts_are_written_atomically_and_a_full_disk_is_one_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from framework.__main__ import _one_line
    from framework.atomic import atomic_write_json

    summary = tmp_path / "summary.json"
    atomic_write_json(summary, {"status": "completed"})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as err:
        atomic_write_json(summary, {"status": "interrupted"})
    assert json.loads(summary.read_text()) == {"status": "completed"}  # the old file, not 0 bytes
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left
    message, status = _one_line(err.value)  # type: ignore[misc]
    assert message.startswith("no space left on device") and "\n" not in message and status == 1


@pytest.mark.slow
def test_resumed_run_continues_its_mlflow_run(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    run_framework([*TAB, "stages=[train]", "tracking=mlflow"], run)
    run_framework([*TAB, "stages=[train]", "tracking=mlflow", "trainer.max_steps=6"], run)
    client = MlflowClient(tracking_uri=f"sqlite:///{(run / 'mlflow.db').resolve()}")
    runs = client.search_runs([client.get_experiment_by_name("framework").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert json.loads((run / "mlflow_run.json").read_text())["run_id"] == runs[0].info.run_id
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")]
    assert max(steps) == 6


@pytest.mark.slow
def test_cli_sigterm_and_modality_failure_without_hydra_tracebacks(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    failed = cli("+modality=tabular", "stages=[train]", "model.hidden=[-1]", "hydra.run.dir=bad")
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "error: modality tabular (package framework" in failed.stderr and "failed in build_task" in failed.stderr
    assert "Error executing job" not in failed.stderr and "Traceback" not in failed.stderr
    assert "Traceback" in (tmp_path / "bad" / "run.log").read_text()

    invalid = cli("+modality=tabular", "trainer.precision=fp7", "trainer.lr=-1")
    assert invalid.returncode == 2 and invalid.stderr.strip().count("\n") == 0, invalid.stderr[-2000:]
    assert "trainer.precision='fp7' is invalid: use one of auto, fp32, bf16, fp16" in invalid.stderr

    run = tmp_path / "run"
    args = [sys.executable, "-m", "framework", "+modality=tabular", "stages=[train]", f"hydra.run.dir={run}",
            "trainer.epochs=100000", "trainer.log_every=5"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120

    def training() -> bool:  # a logged train row: the loop runs, so the engine's handler is installed
        metrics = run / "metrics.jsonl"
        return metrics.exists() and '"kind": "train"' in metrics.read_text()

    while not training() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(15)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    assert "Error executing job" not in output and "Traceback" not in output
    assert "interrupted at step" in output


def test_a_value_of_the_wrong_type_says_why() -> None:
    from framework.config import explain
    from framework.testing import compose

    with pytest.raises(Exception) as err:
        compose(["+modality=tabular", "trainer.lr=abc"])
    message = explain(err.value)
    assert "trainer.lr=abc" in message and "could not be converted to Float" in message and "\n" not in message


def test_evaluate_with_a_checkpoint_of_another_model_is_one_line(tmp_path: Path) -> None:
    run_framework([*TAB, "stages=[train]"], tmp_path / "run")
    with pytest.raises(FrameworkError, match="its weights do not fit this model"):
        run_framework(["+modality=tabular", "stages=[evaluate]", "model.hidden=[8]",
                       f"checkpoint={latest_checkpoint(tmp_path / 'run')}"], tmp_path / "eval")


def test_a_run_dir_that_is_not_writable_is_one_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from framework.training import rundir

    def denied(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(rundir.tempfile, "mkstemp", denied)  # root ignores chmod, so deny the probe
    with pytest.raises(FrameworkError, match="is not writable \\(Permission denied\\)"):
        rundir.check_run_dir(tmp_path / "run")
