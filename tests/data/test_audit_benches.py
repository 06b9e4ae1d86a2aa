"""The audit benches (bench/audit_parallel.py, bench/audit_scaling.py) run end to end at --smoke size."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def smoke(script: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / f"{script}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke", "--json", str(out), *extra],
                   check=True, env=env, timeout=600)
    return json.loads(out.read_text())


@pytest.mark.slow  # writes images, starts worker processes
def test_audit_parallel_smoke(tmp_path: Path) -> None:
    figures = smoke("audit_parallel.py", tmp_path)
    assert [row["workers"] for row in figures["rows"]] == [1, 2]
    assert figures["rows"][0]["speedup"] == 1.0 and figures["rows"][0]["efficiency"] == 1.0
    assert all(run["items"] == 48 and run["cached_bytes_at_start"] in (0, None) for run in figures["runs"])
    assert figures["machine"]["load_average"]


@pytest.mark.slow
def test_audit_scaling_smoke(tmp_path: Path) -> None:
    peer = importlib.util.find_spec("imagededup") is not None  # the bench extra
    figures = smoke("audit_scaling.py", tmp_path, "--peer", "imagededup" if peer else "none")
    (row,) = figures["gate"]
    assert row["items"] == 60 and row["exact"] >= 1 and row["near"] >= 1
    assert figures["search"][0]["pairs"] == figures["search"][0]["planted"]
    if peer:
        assert "imagededup" in figures["peer"]
        assert row["agreement"]["ours_recall"] == 1.0  # every planted copy found
        assert row["agreement"]["jaccard"] > 0
