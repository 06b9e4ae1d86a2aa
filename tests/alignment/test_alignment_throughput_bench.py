"""``bench/alignment_throughput.py --smoke`` trains both sides (the plugin and open_clip) on the same
CLIP shape, each in its own process, and writes every figure it prints to its JSON file."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_alignment_bench_smoke_run_against_open_clip_gives_finite_figures(tmp_path: Path) -> None:
    pytest.importorskip("open_clip", reason="the bench's peer is open_clip (open-clip-torch, the bench extra)")
    out = tmp_path / "alignment.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "alignment_throughput.py"), "--smoke",
                           "--json", str(out)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "open_clip 3." in proc.stdout and "ratio plugin/open_clip:" in proc.stdout
    assert "load_average=" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["settings"]["model"] == "clip-small" and "load_average" in figures["machine"]
    assert figures["smoke"] is True and len(figures["ratios"]) == 1
    for key in ("ours_pairs_per_s", "peer_pairs_per_s", "ours_loss", "peer_loss", "ours_memory_mib",
                "peer_memory_mib"):
        assert all(math.isfinite(v) for v in figures[key]), (key, figures[key])
    assert figures["ours_pairs_per_s"][0] > 0 and figures["peer_pairs_per_s"][0] > 0
    assert figures["ratio_median"] > 0 and math.isfinite(figures["memory_ratio_median"])
    assert figures["ours_parameters"] == figures["peer_parameters"] > 0  # the shapes match
