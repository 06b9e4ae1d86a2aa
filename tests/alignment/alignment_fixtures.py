"""Helpers of the alignment plugin's tests: tiny towers, a tiny manifest from the bundled shapes, a fast trainer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from framework.modality import RunContext
from framework.testing import run_context
from framework.training import TrainerConfig
from plugins.alignment.config import AlignmentConfig, AlignmentModelConfig

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "plugins" / "alignment" / "conf"
SHAPES = REPO / "examples" / "data" / "shapes"
TOKENIZER = REPO / "plugins" / "alignment" / "tokenizer"

# One-block ViT on 16 px inputs and a one-layer 32-wide text encoder: a few thousand parameters each.
TINY_MODEL: dict[str, Any] = {
    "image": {"name": "vit_tiny_patch16_224", "image_size": 16,
              "kwargs": {"patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2, "global_pool": "avg",
                         "class_token": False}},
    "text": {"tokenizer": str(TOKENIZER), "max_length": 16,
             "config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}},
    "embed_dim": 32,
}


def model_config(**overrides: Any) -> AlignmentModelConfig:
    """The tiny model's config with ``overrides`` merged in (nested dicts allowed)."""
    merged = OmegaConf.merge(OmegaConf.structured(AlignmentModelConfig), TINY_MODEL, overrides)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def model_overrides() -> list[str]:
    """The tiny model as command-line overrides of ``model=dual_tiny``."""
    image, text = TINY_MODEL["image"], TINY_MODEL["text"]
    return [f"model.image.image_size={image['image_size']}", "++model.image.kwargs.depth=1",
            "++model.image.kwargs.embed_dim=32", f"model.text.max_length={text['max_length']}",
            "model.text.config.hidden_size=32", "model.text.config.num_hidden_layers=1",
            "model.text.config.intermediate_size=64", "model.embed_dim=32"]


def subset(out: Path, counts: dict[str, int], swap: list[tuple[int, int]] | None = None) -> Path:
    """A copy of the bundled shapes with the first ``counts[split]`` images of each split.

    ``swap`` exchanges the caption lists of pairs of train images (by index): planted
    misaligned pairs. Returns the new data root.
    """
    for split, n in counts.items():
        lines = [json.loads(line) for line in (SHAPES / f"{split}.jsonl").read_text().splitlines()[:n]]
        if split == "train":
            for a, b in swap or []:
                lines[a]["captions"], lines[b]["captions"] = lines[b]["captions"], lines[a]["captions"]
        for line in lines:
            (out / line["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SHAPES / line["path"], out / line["path"])
        (out / f"{split}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    shutil.copy(SHAPES / "datacard.yaml", out / "datacard.yaml")  # a copy keeps its provenance
    return out


def trainer_config(**overrides: Any) -> TrainerConfig:
    """A fast CPU trainer config (no progress bar)."""
    base = {"epochs": 4, "batch_size": 16, "lr": 3e-3, "warmup_ratio": 0.1, "device": "cpu", "progress": False,
            "log_every": 1}
    return TrainerConfig(**{**base, **overrides})


def context(root: Path, run_dir: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
            data: dict[str, Any] | None = None) -> RunContext:
    """A RunContext from the shipped alignment YAML plus overrides, with the tiny towers, on the
    shapes at ``root``. Starting from the shipped YAML also checks that it binds to the schemas."""
    return run_context(CONF / "modality" / "alignment.yaml", {"modality": AlignmentConfig, "model": AlignmentModelConfig},
                       run_dir, overrides={"modality": [modality or {}], "model": [TINY_MODEL, model or {}],
                                           "data": [{"root": str(root)}, data or {}]})


def onnx_matches_on_padded_batches(task: torch.nn.Module, out_dir: Path) -> float:
    """Export both towers to ONNX, then score padded batches of varied lengths in onnxruntime:
    returns the largest difference from PyTorch; asserts a caption embeds alike alone and padded
    among longer ones (the graph follows the attention mask) and that images match."""
    ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (the real extra)")
    pytest.importorskip("onnx", reason="needs onnx (the real extra)")
    from plugins.alignment.export import export_onnx_towers

    image_path, text_path = export_onnx_towers(task, out_dir)
    assert task.training is False  # the export leaves the task as it found it
    pixels = torch.randint(0, 256, (4, 3, *task.spec.size), dtype=torch.uint8)
    with torch.no_grad():
        images = task.image_features(pixels).numpy()
    session = ort.InferenceSession(str(image_path), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"images": pixels.numpy()})[0] - images).max() < 1e-4
    text = ort.InferenceSession(str(text_path), providers=["CPUExecutionProvider"])
    worst, alone = 0.0, {}
    for captions in (["a circle"], ["a circle", "a big green square near the bottom right", "red"],
                     ["blue", "a circle", "two stars", "a yellow triangle on the left", "small"]):
        enc = task.tokenizer(captions, padding=True, return_tensors="np")
        feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
        theirs = text.run(None, feeds)[0]
        with torch.no_grad():
            ours = task.text_features(*(torch.from_numpy(feeds[k]) for k in ("input_ids", "attention_mask"))).numpy()
        worst = max(worst, float(np.abs(theirs - ours).max()))
        alone.setdefault("a circle", theirs[0])
        assert np.abs(theirs[captions.index("a circle")] - alone["a circle"]).max() < 1e-4
    return worst
