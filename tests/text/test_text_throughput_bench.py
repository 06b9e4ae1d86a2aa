"""``bench/text_throughput.py --smoke`` runs both sides (this plugin and TRL) end to end and writes
every figure it prints to its JSON file."""

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
def test_the_text_bench_smoke_run_compares_both_methods_with_counted_tokens(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="the bench's peer is TRL (the bench extra)")
    out = tmp_path / "text.json"
    env = {**os.environ, "FRAMEWORK_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "text_throughput.py"), "--smoke", "--method", "both",
                           "--json", str(out)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "load average" in proc.stdout and "TRL 1." in proc.stdout and "padded batches" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["model"] == "random:llama-tiny" and "load_average" in figures["machine"]
    for method in ("sft", "dpo"):
        for side in ("ours", "trl"):
            got = figures[method][side]
            assert got["tokens"] > 0 and got["items"] > 0 and got["seconds"] > 0 and math.isfinite(got["memory_mib"])
            assert got["settings"]["optimizer"] in ("AdamW fused", "adamw_torch_fused")
        assert figures[method]["throughput_ratio"] > 0 and figures[method]["memory_ratio"] != 0
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    keys = ("throughput_ratio", "tokens_ratio", "cpu_ratio", "memory_ratio")
    assert set(last) == {f"{m}_{k}" for m in ("sft", "dpo") for k in keys}
