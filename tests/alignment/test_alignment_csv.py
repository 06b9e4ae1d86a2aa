"""Alignment data as CSV: the shipped config reads it (data.format defaults to auto)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from framework.data import load_bundle
from framework.testing import compose
from plugins.alignment.data import captions_of


def test_train_csv_with_captions_reads_under_the_shipped_config(tmp_path: Path) -> None:
    for i in range(3):
        Image.new("RGB", (8, 8), (80 * i, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "train.csv").write_text("path,caption,label\n" + "".join(
        f"{i}.png,a red square {i}|a square,square\n" for i in range(3)), encoding="utf-8")
    cfg = compose(["+modality=alignment", f"data.root={tmp_path}", "data.train=train.csv", "data.val=null",
                   "data.test=null"])
    assert cfg.data.format == "auto"
    bundle = load_bundle(cfg.data, label_type="class")
    records = bundle.records("train")
    assert len(records) == 3 and captions_of(records[0]) == ["a red square 0", "a square"]
