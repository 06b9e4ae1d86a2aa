"""bench/vision_throughput.py at smoke size, in its own process as a user runs it: it trains both
sides (the plugin on the engine, timm's own pieces) and its loaders on generated JPEGs, and
writes finite figures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "vision_throughput.py"


def _smoke(tmp_path: Path, *flags: str) -> dict:
    out = tmp_path / "vision.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--json", str(out), *flags], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio ours/timm:" in done.stdout and "peer: timm " in done.stdout
    return json.loads(out.read_text())


@pytest.mark.slow
def test_smoke_training_writes_finite_figures_for_both_sides(tmp_path) -> None:
    figures = _smoke(tmp_path)
    assert figures["mode"] == "train" and figures["image_size"] == 32 and figures["images"] == 16
    for key in ("ours_images_per_s", "timm_images_per_s", "ratio", "ours_memory_mib", "timm_memory_mib"):
        assert math.isfinite(figures[key]), (key, figures[key])
    assert figures["ours_images_per_s"] > 0 and figures["timm_images_per_s"] > 0
    assert figures["machine"]["cores"] == os.cpu_count() and len(figures["machine"]["load_average"]) == 3


@pytest.mark.slow
def test_smoke_loader_only_times_both_loaders(tmp_path) -> None:
    figures = _smoke(tmp_path, "--loader-only")
    assert figures["mode"] == "loader_only" and "ours_memory_mib" not in figures
    assert figures["ours_images_per_s"] > 0 and figures["timm_images_per_s"] > 0 and math.isfinite(figures["ratio"])
