"""Image data as users keep it: split folders without test/, a flat class folder, Hugging Face
imagefolder with metadata; each newcomer failure now works or names its fix in one line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from framework.data import DataConfig, load_bundle, run_audit
from framework.data.errors import DataError
from framework.data.readers import detect_format
from framework.testing import run_framework
from plugins.vision.modality import VisionModality
from vision_fixtures import COLOURS, write_folder, write_image

TINY = ["+modality=vision", "model.image_size=16", "++model.kwargs.depth=1", "++model.kwargs.embed_dim=32",
        "trainer.max_steps=2", "trainer.batch_size=4", "trainer.progress=false", "trainer.device=cpu",
        "data.gates.balance.min_per_class=1"]


def test_train_and_val_folders_without_test_train_and_evaluate(tmp_path, caplog) -> None:
    # The README's own example: data.root=/data/cats data.train=train data.val=val, no test/.
    root = write_folder(tmp_path / "my_pets", {"train": 4, "val": 2})
    with caplog.at_level(logging.WARNING):
        result = run_framework([*TINY, f"data.root={root}", "data.train=train", "data.val=val"], tmp_path / "run")
    assert result.status == "completed"
    assert "no test in" in caplog.text and "data.test=null" in caplog.text
    assert "accuracy" in result.metrics and not any(k.startswith("test/") for k in result.metrics)
    assert (tmp_path / "run" / "eval" / "predictions_val.csv").is_file()


def test_an_explicit_missing_test_split_names_what_is_there_and_data_test_null(tmp_path, make_ctx) -> None:
    root = write_folder(tmp_path / "my_pets", {"train": 2, "val": 1})
    with pytest.raises(DataError) as err:
        VisionModality().load_data(make_ctx(root, data={"test": "holdout"}))
    message = str(err.value)
    assert message.startswith("data.test=holdout: ") and "holds datacard.yaml, train/, val/" in message
    assert "set data.test=null to run without a test split" in message


def test_a_valid_folder_is_read_as_val(tmp_path, make_ctx, caplog) -> None:
    root = write_folder(tmp_path / "roboflow", {"train": 2, "valid": 1, "test": 1})
    with caplog.at_level(logging.INFO):
        bundle = VisionModality().load_data(make_ctx(root))
    assert bundle.counts() == {"train": 6, "val": 3, "test": 3}
    assert "data.val: val not found; reading valid" in caplog.text


def test_a_flat_class_folder_names_the_split_command_then_trains_as_told(tmp_path, make_ctx) -> None:
    root = tmp_path / "flat"
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        for i in range(3):
            write_image(root / name / f"{i}.png", colour, rng)
    (root / "datacard.yaml").write_text("sources: [coloured squares]\n")
    with pytest.raises(DataError) as err:
        VisionModality().load_data(make_ctx(root))
    message = str(err.value)
    assert "class folders of images: blue, green, red" in message and "one image_folder source" in message
    assert "python -m framework.data split" in message and "data.train=. stages=[audit,train]" in message
    assert "\n" not in message
    result = run_framework([*TINY, f"data.root={root}", "data.train=.", "stages=[audit,train]"], tmp_path / "run")
    assert result.status == "completed"


def _imagefolder(root: Path, metadata: str) -> Path:
    rng = np.random.default_rng(1)
    rows = []
    for name, colour in COLOURS.items():
        for i in range(2):
            write_image(root / "train" / name / f"{i}.png", colour, rng)
            rows.append({"file_name": f"{name}/{i}.png", "lighting": "day" if i else "night"})
    if metadata == "csv":
        text = "file_name,lighting,label\n" + "".join(f"{r['file_name']},{r['lighting']},{r['file_name'][0]}\n"
                                                       for r in rows)
        (root / "train" / "metadata.csv").write_text(text)
    else:
        (root / "train" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_imagefolder_metadata_jsonl_takes_labels_from_class_folders_and_slices_from_columns(tmp_path) -> None:
    root = _imagefolder(tmp_path / "hf", "jsonl")
    assert detect_format(root / "train") == "imagefolder"
    cfg = DataConfig(root=str(root), train="train", slices=["lighting"])
    bundle = load_bundle(cfg, label_type="class")
    assert bundle.classes == ["blue", "green", "red"]
    assert {r.slices["lighting"] for r in bundle.records()} == {"day", "night"}
    report = run_audit(bundle, cfg, modality="vision", out_dir=tmp_path / "audit", label_type="class")
    assert report.result("coverage").passed and report.result("cleanliness").passed


def test_imagefolder_metadata_csv_label_column_wins_and_a_missing_file_is_quarantined(tmp_path) -> None:
    root = _imagefolder(tmp_path / "hf", "csv")
    (root / "train" / "red" / "1.png").unlink()
    bundle = load_bundle(DataConfig(root=str(root), train="train"), label_type="class")
    assert bundle.classes == ["b", "g", "r"]
    assert [(q.reason, q.record_id) for q in bundle.quarantine] == [("missing_file", "train/red/1.png")]
    (root / "train" / "metadata.csv").write_text("image,label\nred/0.png,r\n")
    with pytest.raises(DataError, match=r"metadata\.csv:2: no 'file_name' \(columns present: \['image', 'label'\]\)"):
        load_bundle(DataConfig(root=str(root), train="train", format="imagefolder"))
