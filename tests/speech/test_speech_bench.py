"""``bench/speech_throughput.py``: its corpus, and its smoke run end to end (both sides, in subprocesses)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # whisper's tokenizer loads in seconds; the smoke run takes a minute or more


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import speech_throughput

        yield speech_throughput
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_corpus_fills_transcripts_up_to_seq_len(bench, tmp_path: Path) -> None:
    from plugins.speech.tokens import encode

    stats = bench.write_corpus(tmp_path, 6, 24)
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 == stats["utterances"]
    lengths = [len(encode(r["text"], r["language"])[0]) for r in rows]
    assert max(lengths) == stats["decoder_tokens_max"] <= 24
    assert min(lengths) >= 16  # filled, not one short bundled transcript (those are ~10 tokens)
    assert all((tmp_path / r["audio_filepath"]).is_file() for r in rows)
    assert len({r["audio_filepath"] for r in rows}) == 6


@pytest.mark.timeout(1800)  # three fresh processes; a minute or two on a quiet machine, far more on a busy one
def test_smoke_run_reports_finite_figures(tmp_path: Path) -> None:
    out = tmp_path / "speech.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "speech_throughput.py"), "--smoke", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1700)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "transformers Seq2SeqTrainer" in proc.stdout and "ratio ours/Seq2SeqTrainer" in proc.stdout
    figures = json.loads(out.read_text())
    assert set(figures["sides"]) == {"ours", "peer", "peer_loss_positions"}
    assert figures["model"] == "tiny" and figures["peer"]["optim"] == "adamw_torch_fused"
    for side in figures["sides"].values():
        assert math.isfinite(side["utt_per_s"]) and side["utt_per_s"] > 0
        assert math.isfinite(side["memory_mib"]) and side["memory_mib"] >= 0
        assert math.isfinite(side["loss"])
    for peer in ("peer", "peer_loss_positions"):
        assert math.isfinite(figures["sides"][peer]["ratio_throughput_ours_over_this"])
    assert len(figures["machine"]["load_average"]) == 3
