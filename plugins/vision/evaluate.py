"""Prediction and evaluation of an image classifier: probabilities, reports, robustness.

The generic classification figures come from :mod:`framework.evaluation.classification`; this
module adds what is specific to images: running the model over decoded pixels, and accuracy
under perturbations (brightness, blur, noise, JPEG) built with the same albumentations machinery
as training augmentation.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from framework.data.records import Record
from framework.evaluation import classification as cls_eval
from framework.evaluation.types import Predictions
from framework.media.augment import condition_pipelines
from framework.media.images import ImageStore
from plugins.vision.dataset import ImageDataset


def device_of(module: nn.Module) -> torch.device:
    """Where ``module``'s weights are (CPU for a module without parameters)."""
    return next(iter(module.parameters()), torch.empty(0)).device


@torch.inference_mode()
def predict_probs(task: nn.Module, dataset: ImageDataset, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities ``(N, C)`` of every item of ``dataset``, in order.

    The task is put in eval mode for the call and restored afterwards; ``seed`` the dataset's
    pipeline before calling when it is random (robustness conditions). The logits are divided by
    the task's ``temperature`` (1.0 unless loaded from a calibrated export).
    """
    device = device_of(task)
    was_training = task.training
    task.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
    out = []
    temperature = float(getattr(task, "temperature", 1.0))
    try:
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True)  # (B, 3, H, W) uint8
            logits = task.logits(images)  # (B, C)
            out.append(torch.softmax(logits.float() / temperature, dim=-1).cpu())
    finally:
        task.train(was_training)
    n_classes = len(getattr(task, "classes", [])) or 0
    return torch.cat(out).numpy() if out else np.zeros((0, n_classes), dtype=np.float32)


def to_predictions(records: Sequence[Record], probs: np.ndarray, classes: Sequence[str], split: str) -> Predictions:
    """Predictions of ``records`` from their ``(N, C)`` probabilities; unlabeled targets are ``None``."""
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)  # (N,)
    return Predictions(
        split=split,
        ids=[r.id for r in records],
        targets=[None if r.label is None else str(r.label) for r in records],
        outputs=[str(classes[i]) for i in best],
        scores=probs,
        classes=list(classes),
        slices=[dict(r.slices) for r in records],
    )


def robustness(
    task: nn.Module,
    records: Sequence[Record],
    store: ImageStore,
    conditions: Mapping[str, Any],
    clean_accuracy: float,
    *,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Accuracy under each condition: ``{name: {"accuracy": .., "drop": clean - accuracy}}``.

    Args:
        task: The classifier.
        records: Labeled records of the split.
        store: Decoded pixels.
        conditions: Condition name -> transform pipeline spec (``{ImageCompression: {...}}``);
            transforms without ``p`` are applied to every image.
        clean_accuracy: Accuracy without perturbation, for the drop.
        batch_size: Inference batch size.
        seed: Seed of the perturbations, so that reruns measure the same images.
    """
    labeled = [r for r in records if r.label is not None]
    classes = list(task.classes)
    out: dict[str, dict[str, float]] = {}
    for name, pipeline in condition_pipelines(conditions, store.size, "modality.robustness", seed).items():
        probs = predict_probs(task, ImageDataset(labeled, store, classes, pipeline), batch_size)
        hits = [classes[i] == str(r.label) for i, r in zip(probs.argmax(axis=1), labeled)]
        accuracy = float(np.mean(hits)) if hits else float("nan")
        out[name] = {"accuracy": accuracy, "drop": clean_accuracy - accuracy}
    return out


def write_predictions_csv(predictions: Predictions, path: Path, top_k: int = 1) -> Path:
    """One row per item: id, target, prediction, confidence, and the top-k classes with scores."""
    ranked = cls_eval.top_k(predictions.scores, predictions.classes, top_k)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header = ["id", "target", "prediction", "confidence"]
        for k in range(1, len(ranked[0]) + 1 if ranked else 1):
            header += [f"top{k}", f"top{k}_score"]
        writer.writerow(header)
        for rid, target, output, row in zip(predictions.ids, predictions.targets, predictions.outputs, ranked):
            cells = [rid, "" if target is None else target, output, f"{row[0][1]:.6f}"]
            for name, score in row:
                cells += [name, f"{score:.6f}"]
            writer.writerow(cells)
    return path
