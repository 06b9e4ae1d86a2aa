"""The sharded-corpus benchmark at 2k items: written, audited and trained on from its shards
through the real entry point, within a bounded memory footprint."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "shards_corpus.py"


@pytest.mark.slow
def test_a_sharded_corpus_is_audited_and_trained_from_its_shards(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("shards_corpus", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["shards_corpus"] = bench
    spec.loader.exec_module(bench)
    figures = bench.main(["--items", "2000", "--per-shard", "250", "--steps", "3", "--keep", str(tmp_path)])
    assert figures["audited_items"] == 2000 and figures["trained_steps"] == 3
    # the run, its audit pool and loader workers: torch and the towers, not the corpus (docs/data.md)
    assert figures["peak_rss_mib"] < 3000
    assert (tmp_path / "run" / "checkpoints").is_dir()
