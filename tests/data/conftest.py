"""Planted-problem fixtures, generated in tmp_path (no binary files in the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest
from planted_data import brightened_copy, make_image, truncate, write_jsonl


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """An image dataset with planted problems.

    train: 6 distinct images (cats a0-a2, dogs b0-b2), an exact copy of a0 (a0_copy), a near
    duplicate of a1 (a1_bright), a corrupt PNG (bad.png); test: t0 (distinct) and a leaked copy
    of b0 (leak.png).
    """
    root = tmp_path / "images"
    for i in range(3):
        make_image(root / "img" / f"a{i}.png", seed=i)
        make_image(root / "img" / f"b{i}.png", seed=10 + i)
    (root / "img" / "a0_copy.png").write_bytes((root / "img" / "a0.png").read_bytes())
    brightened_copy(root / "img" / "a1.png", root / "img" / "a1_bright.png")
    truncate(root / "img" / "a2.png", root / "img" / "bad.png", keep=0.4)
    make_image(root / "img" / "t0.png", seed=99)
    (root / "img" / "leak.png").write_bytes((root / "img" / "b0.png").read_bytes())
    train = [{"path": f"img/a{i}.png", "label": "cat", "lighting": "day"} for i in range(3)]
    train += [{"path": f"img/b{i}.png", "label": "dog", "lighting": "night"} for i in range(3)]
    train += [{"path": "img/a0_copy.png", "label": "cat", "lighting": "day"},
              {"path": "img/a1_bright.png", "label": "cat", "lighting": "day"},
              {"path": "img/bad.png", "label": "dog", "lighting": "day"}]
    write_jsonl(root / "train.jsonl", train)
    write_jsonl(root / "test.jsonl", [{"path": "img/t0.png", "label": "cat"}, {"path": "img/leak.png", "label": "dog"}])
    return root


@pytest.fixture
def clean_image_root(tmp_path: Path) -> Path:
    """Distinct images only: every gate should pass."""
    root = tmp_path / "clean"
    rows = []
    for i in range(4):
        for label, offset in (("cat", 0), ("dog", 50)):
            make_image(root / label / f"{i}.png", seed=offset + i)
            rows.append({"path": f"{label}/{i}.png", "label": label})
    write_jsonl(root / "train.jsonl", rows)
    return root
