"""Helpers of the vision plugin's tests: a tiny colour-coded image folder and a fast trainer.

The folder has three classes told apart by colour (red, green, blue squares with noise), so a
ViT of one block learns them in a few dozen CPU steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from framework.modality import RunContext
from framework.testing import run_context
from framework.training import TrainerConfig

CONF = Path(__file__).resolve().parents[2] / "plugins" / "vision" / "conf"
COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (40, 50, 210)}

# A one-block ViT on 16x16 inputs (4 patches of 8x8): about 20k parameters.
TINY_VIT = {
    "name": "vit_tiny_patch16_224",
    "image_size": 16,
    "kwargs": {"patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2, "global_pool": "avg",
               "class_token": False},
}


def write_image(path: Path, colour: tuple[int, int, int], rng: np.random.Generator, size: int = 16,
                mode: str = "RGB") -> Path:
    """A noisy square of ``colour`` saved at ``path`` in Pillow ``mode``."""
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").convert(mode).save(path)
    return path


def write_folder(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """``root/<split>/<class>/<i>.png`` for every split in ``per_class`` (split -> images per class)."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for name, colour in COLOURS.items():
            for i in range(n):
                write_image(root / split / name / f"{i:03d}.png", colour, rng)
    (root / "datacard.yaml").write_text("sources: [coloured squares drawn by tests/vision/vision_fixtures.py]\n")
    return root


def trainer_config(**overrides: Any) -> TrainerConfig:
    """A fast CPU trainer config (no progress bar, no checkpoints besides the final one)."""
    base = {"epochs": 8, "batch_size": 8, "lr": 3e-3, "warmup_ratio": 0.1, "device": "cpu", "progress": False,
            "log_every": 1}
    return TrainerConfig(**{**base, **overrides})


def context(root: Path, run_dir: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
            data: dict[str, Any] | None = None) -> RunContext:
    """A RunContext from the shipped vision YAML plus overrides, with the tiny ViT, on ``root``'s
    train/val/test folders. Starting from the shipped YAML also checks that it binds to the schemas."""
    from plugins.vision.config import VisionConfig, VisionModelConfig

    return run_context(CONF / "modality" / "vision.yaml", {"modality": VisionConfig, "model": VisionModelConfig},
                       run_dir, overrides={"modality": [modality or {}], "model": [TINY_VIT, model or {}],
                                           "data": [{"root": str(root), "train": "train", "val": "val",
                                                     "test": "test"}, data or {}]})
