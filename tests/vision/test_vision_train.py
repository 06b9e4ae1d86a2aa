"""Training on the engine, evaluation, prediction and export, end to end on a tiny image folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.data.records import Record
from framework.hookspecs import RunInfo
from framework.training import Engine
from plugins.vision.export import load_task
from plugins.vision.modality import STORE_KEY, VisionModality
from plugins.vision.predict import predict_folder
from vision_fixtures import COLOURS, trainer_config, write_image


def _train(ctx, data, **trainer):
    modality = VisionModality()
    task = modality.build_task(ctx, data)
    info = RunInfo(run_dir=ctx.run_dir, modality="vision", name="test", config_yaml=ctx.config_yaml)
    with Engine(trainer_config(**trainer), info, seed=ctx.seed) as engine:
        modality.train(ctx, engine, task, data)
    return modality, task


def _metrics(run_dir: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["metrics"] for r in rows if r["kind"] == kind]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny ViT trained on the colour folder, shared by the tests that only read it."""
    from vision_fixtures import context, write_folder

    tmp = tmp_path_factory.mktemp("trained")
    root = write_folder(tmp / "images", {"train": 16, "val": 4, "test": 4})
    ctx = context(root, tmp / "run", modality={"critical_classes": ["red", "purple"]})
    data = VisionModality().load_data(ctx)
    modality, task = _train(ctx, data)
    return ctx, data, modality, task, root


@pytest.mark.slow
def test_loss_falls_and_validation_runs_each_epoch(trained) -> None:
    ctx, *_ = trained
    train = [m["loss"] for m in _metrics(ctx.run_dir, "train")]
    val = _metrics(ctx.run_dir, "val")
    assert len(train) == 8 * 6  # 8 epochs of 48 images in batches of 8, logged every step
    assert np.mean(train[-6:]) < 0.6 * np.mean(train[:6])
    assert len(val) == 8 and val[-1]["val_loss"] < val[0]["val_loss"]
    assert val[-1]["val_acc"] == 1.0


@pytest.mark.slow
def test_evaluate_reports_classes_confusion_critical_and_robustness(trained) -> None:
    ctx, data, modality, task, _ = trained
    report = modality.evaluate(ctx, task, data, "test")
    assert report.metrics["accuracy"] == 1.0 and report.metrics["count"] == 12
    assert set(report.per_class) == {"blue", "green", "red"}
    assert report.per_class["red"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 4.0}
    assert report.metrics["min_class_recall"] == 1.0
    assert report.metrics["critical_min_recall"] == 1.0
    assert any(n.startswith("critical class `red`: recall 1.00") for n in report.notes)
    assert any("`purple` has no items in split `test`" in n for n in report.notes)
    assert set(report.robustness) == {"brightness_dark", "blur", "gaussian_noise", "jpeg_q20"}
    for name, row in report.robustness.items():
        assert 0.0 <= row["accuracy"] <= 1.0
        assert report.metrics[f"robust/{name}/accuracy"] == row["accuracy"]
        assert row["drop"] == pytest.approx(1.0 - row["accuracy"])
    artifacts = {Path(a).name: ctx.run_dir / a for a in report.artifacts}
    png, csv_path = artifacts["confusion_test.png"], next(v for k, v in artifacts.items() if k.endswith(".csv"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert artifacts["reliability_test.png"].read_bytes()[:4] == b"\x89PNG"  # calibration's diagram
    table = next(body for head, body in report.sections.items() if head.startswith("Confusion matrix"))
    assert "| `red` | 0 | 0 | 4 |" in table
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and rows[0]["target"] == rows[0]["prediction"] and "top3_score" in rows[0]


@pytest.mark.slow
def test_robustness_is_reproducible(trained) -> None:
    ctx, data, modality, task, _ = trained
    first = modality.evaluate(ctx, task, data, "val").robustness
    assert modality.evaluate(ctx, task, data, "val").robustness == first


@pytest.mark.slow
def test_predict_on_unlabeled_records(trained, tmp_path) -> None:
    ctx, _, modality, task, _ = trained
    rng = np.random.default_rng(5)
    records = [
        Record(id=f"new/{name}", split="new", source="test", media=write_image(tmp_path / f"{name}.png", colour, rng))
        for name, colour in COLOURS.items()
    ]
    preds = modality.predict(ctx, task, records, "new")
    assert preds.targets == [None, None, None]
    assert preds.outputs == ["red", "green", "blue"]
    assert preds.classes == ["blue", "green", "red"]
    assert preds.scores.shape == (3, 3)
    np.testing.assert_allclose(preds.scores.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_export_reloads_to_the_same_outputs(trained, tmp_path) -> None:
    ctx, data, modality, task, _ = trained
    written = modality.export(ctx, task, tmp_path / "export")
    assert sorted(p.name for p in written) == ["config.yaml", "model.pt2", "model.safetensors", "vision.json"]
    images = torch.stack([torch.from_numpy(ctx.stash[STORE_KEY].get(r)).permute(2, 0, 1)
                          for r in data.records("test")])  # (12, 3, 16, 16) uint8
    task.eval()
    with torch.no_grad():
        expected = torch.softmax(task.logits(images), dim=-1)
        reloaded = load_task(tmp_path / "export")
        torch.testing.assert_close(torch.softmax(reloaded.logits(images), dim=-1), expected)
        program = torch.export.load(str(tmp_path / "export" / "model.pt2")).module()
        torch.testing.assert_close(program(images), expected)  # batch of 12; exported with 2


@pytest.mark.slow
def test_predict_folder_writes_top_k_csv_from_export_and_checkpoint(trained, tmp_path) -> None:
    ctx, _, modality, task, root = trained
    modality.export(ctx, task, tmp_path / "export")
    folder = root / "test"
    (folder / "notes.txt").write_text("not an image")
    broken = folder / "red" / "zz_broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 10)
    out = predict_folder(tmp_path / "export", folder, tmp_path / "pred.csv", top_k=2)
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 13 and list(rows[0]) == ["path", "prediction", "confidence", "top1", "top1_score",
                                                 "top2", "top2_score", "error"]
    good = [r for r in rows if not r["error"]]
    assert all(r["path"].split("/")[0] == r["prediction"] == r["top1"] for r in good)
    assert all(float(r["top1_score"]) >= float(r["top2_score"]) for r in good)
    [bad] = [r for r in rows if r["error"]]
    assert bad["path"] == "red/zz_broken.png" and bad["prediction"] == ""
    # A checkpoint of the run serves too: vision.json sits in the run dir beside checkpoints/.
    [ckpt] = sorted((ctx.run_dir / "checkpoints").iterdir())
    again = predict_folder(ckpt, folder, tmp_path / "pred2.csv", top_k=2)
    assert again.read_text() == out.read_text()


@pytest.mark.slow
def test_mixup_and_ema_train(image_root, make_ctx) -> None:
    ctx = make_ctx(image_root, modality={"mixup": {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}})
    data = VisionModality().load_data(ctx)
    # 48 images, batch 10: the odd last batch is dropped, so every mixed batch is even.
    modality, task = _train(ctx, data, epochs=2, batch_size=10, ema_decay=0.9)
    assert task.mixup is not None
    assert len(_metrics(ctx.run_dir, "train")) == 2 * 4
    assert modality.evaluate(ctx, task, data, "val").metrics["count"] == 12


@pytest.mark.gpu
def test_cuda_training_uses_bf16_and_channels_last(image_root, make_ctx) -> None:
    ctx = make_ctx(image_root, modality={"channels_last": True})
    data = VisionModality().load_data(ctx)
    modality, task = _train(ctx, data, epochs=4, device="cuda", precision="auto")
    first_weight = next(p for p in task.parameters() if p.ndim == 4)  # the patch embedding convolution
    assert first_weight.is_cuda and first_weight.is_contiguous(memory_format=torch.channels_last)
    losses = [m["loss"] for m in _metrics(ctx.run_dir, "train")]
    assert losses[-1] < losses[0]
    assert modality.evaluate(ctx, task, data, "val").metrics["count"] == 12


class _BrightnessClassifier(torch.nn.Module):
    """Says ``bright`` when an image's mean pixel is over 100, else ``dark``: a model whose answer
    depends only on what the perturbation does."""

    classes = ["dark", "bright"]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        bright = (images.float().mean(dim=(1, 2, 3)) > 100).float()  # (B,)
        return torch.stack([1 - bright, bright], dim=1) * 10  # (B, 2)


def test_robustness_applies_each_condition_to_the_images(tmp_path) -> None:
    from plugins.vision.evaluate import robustness
    from framework.media.images import ImageStore

    rng = np.random.default_rng(0)
    store = ImageStore((16, 16), cache_limit_mb=1)
    records = [Record(f"b{i}", "val", "test", media=write_image(tmp_path / f"b{i}.png", (200, 200, 200), rng),
                      label="bright") for i in range(4)]
    for record in records:
        assert store.probe(record.media).ok
    conditions = {"darken": {"RandomBrightnessContrast": {"brightness_limit": [-0.8, -0.8], "contrast_limit": [0, 0]}},
                  "blur": {"GaussianBlur": {"sigma_limit": [1.0, 1.0], "blur_limit": [3, 3]}},
                  "off": None}
    result = robustness(_BrightnessClassifier(), records, store, conditions, clean_accuracy=1.0)
    assert result == {"darken": {"accuracy": 0.0, "drop": 1.0}, "blur": {"accuracy": 1.0, "drop": 0.0}}


@pytest.mark.slow
def test_predict_command_line_classifies_a_folder(trained, tmp_path) -> None:
    import subprocess
    import sys

    ctx, _, modality, task, root = trained
    modality.export(ctx, task, tmp_path / "export")
    out = tmp_path / "predictions.csv"
    result = subprocess.run([sys.executable, "-m", "plugins.vision.predict", str(tmp_path / "export"),
                             str(root / "val"), str(out), "--top-k", "3", "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"wrote {out}"
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and all(r["error"] == "" for r in rows)
    assert all(r["path"].split("/")[0] == r["prediction"] == r["top1"] for r in rows)
    assert {r["top3"] for r in rows} <= set(COLOURS)
    missing = subprocess.run([sys.executable, "-m", "plugins.vision.predict", str(tmp_path / "nowhere"),
                              str(root / "val"), str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "nowhere" in missing.stderr


@pytest.mark.slow
def test_efficientnet_trains_and_evaluates(image_root, make_ctx) -> None:
    from omegaconf import OmegaConf

    from plugins.vision.config import VisionModelConfig
    from vision_fixtures import CONF

    ctx = make_ctx(image_root)
    # model=efficientnet with timm's 100k-parameter EfficientNet in place of B0 (4M), at 16 px.
    shipped = OmegaConf.load(CONF / "model" / "efficientnet.yaml")
    ctx.model = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(VisionModelConfig), shipped,
                                                    {"name": "test_efficientnet", "image_size": 16}))
    data = VisionModality().load_data(ctx)
    modality, task = _train(ctx, data, epochs=4, lr=1e-2)
    assert type(task.model).__name__ == "EfficientNet"
    losses = [m["loss"] for m in _metrics(ctx.run_dir, "train")]
    assert len(losses) == 4 * 6 and all(np.isfinite(losses))
    assert np.mean(losses[-6:]) < np.mean(losses[:6])
    report = modality.evaluate(ctx, task, data, "val")
    assert report.metrics["count"] == 12 and set(report.per_class) == set(COLOURS)
