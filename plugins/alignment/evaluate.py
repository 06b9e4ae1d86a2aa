"""Retrieval evaluation of a dual encoder: recall@K and mean rank both ways, zero-shot
classification, per-slice recall and recall under image corruptions.

Ranks are 1-based. Image-to-text: an image's rank is that of its best-ranked own caption among
all captions of the split. Text-to-image: a caption's rank is that of its image among all images.
Ties count against the query (a score equal to the correct one ranks ahead of it), so a model
that scores everything alike gets the worst ranks, not the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from framework.data.records import Record
from framework.evaluation import classification as cls_eval
from framework.evaluation.types import EvalReport, Predictions
from framework.media.augment import condition_pipelines
from plugins.alignment.data import CaptionDataset, ImageOnlyDataset


@dataclass
class Embedded:
    """Embeddings of one split: ``images`` ``(N, D)``, ``texts`` ``(M, D)``, and ``owner`` ``(M,)``,
    the image index of each caption."""

    images: np.ndarray
    texts: np.ndarray
    owner: np.ndarray


@torch.inference_mode()
def embed_images(task: Any, dataset: CaptionDataset, batch_size: int = 256) -> np.ndarray:
    """``(N, D)`` embeddings of the dataset's images (through its pipeline), in order."""
    loader = DataLoader(ImageOnlyDataset(dataset), batch_size=batch_size, shuffle=False)
    return np.concatenate([task.encode_pixels(batch["image"], batch_size) for batch in loader]) if len(dataset) \
        else np.zeros((0, 1), dtype=np.float32)


def embed(task: Any, dataset: CaptionDataset, batch_size: int = 256) -> Embedded:
    """Every image and every caption of ``dataset``."""
    texts = [c for caps in dataset.captions for c in caps]
    owner = np.asarray([i for i, caps in enumerate(dataset.captions) for _ in caps], dtype=np.int64)
    return Embedded(embed_images(task, dataset, batch_size), task.encode_texts(texts, batch_size), owner)


def retrieval_ranks(images: np.ndarray, texts: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks: ``(N,)`` image-to-text and ``(M,)`` text-to-image.

    Args:
        images: ``(N, D)`` image embeddings.
        texts: ``(M, D)`` caption embeddings.
        owner: ``(M,)`` the image index of each caption; every image owns at least one caption.
    """
    sim = images @ texts.T  # (N, M)
    n = images.shape[0]
    own = owner[None, :] == np.arange(n)[:, None]  # (N, M) caption belongs to image
    best_own = np.where(own, sim, -np.inf).max(axis=1)  # (N,) best score of an own caption
    i2t = 1 + (np.where(own, -np.inf, sim) >= best_own[:, None]).sum(axis=1)  # (N,)
    correct = sim[owner, np.arange(len(owner))]  # (M,) score of each caption with its image
    others = np.where(own.T, -np.inf, sim.T)  # (M, N) other images
    t2i = 1 + (others >= correct[:, None]).sum(axis=1)  # (M,)
    return i2t, t2i


def recall_metrics(i2t: np.ndarray, t2i: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """``i2t_r{K}``, ``t2i_r{K}``, ``mean_recall`` (their mean over K and both ways), mean ranks."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"i2t_r{k}"] = float(np.mean(i2t <= k)) if len(i2t) else float("nan")
        out[f"t2i_r{k}"] = float(np.mean(t2i <= k)) if len(t2i) else float("nan")
    out["mean_recall"] = float(np.mean([out[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in ks]))
    out["i2t_mean_rank"] = float(np.mean(i2t)) if len(i2t) else float("nan")
    out["t2i_mean_rank"] = float(np.mean(t2i)) if len(t2i) else float("nan")
    return out


def chance_recall(n_images: int, k: int) -> float:
    """Text-to-image recall@K of a model that ranks images at random."""
    return min(1.0, k / max(n_images, 1))


def slice_recall(records: Sequence[Record], i2t: np.ndarray, t2i: np.ndarray, owner: np.ndarray) -> dict[str, dict[str, float]]:
    """``field=value`` -> ``i2t_r1``, ``t2i_r1`` and ``count`` of the queries from that slice
    (each ranked against the whole split)."""
    out: dict[str, dict[str, float]] = {}
    fields = sorted({f for r in records for f in r.slices})
    for f in fields:
        for value in sorted({r.slices[f] for r in records if f in r.slices}):
            members = np.asarray([r.slices.get(f) == value for r in records])
            caps = members[owner]
            out[f"{f}={value}"] = {"i2t_r1": float(np.mean(i2t[members] <= 1)),
                                   "t2i_r1": float(np.mean(t2i[caps] <= 1)), "count": float(members.sum())}
    return out


def zero_shot(task: Any, images: np.ndarray, records: Sequence[Record], classes: Sequence[str],
              prompts: Sequence[str], split: str, batch_size: int = 256) -> Predictions:
    """Zero-shot classification: each class is the mean embedding of its prompts; the class
    whose embedding is closest to an image's is its prediction (scores: softmax over classes)."""
    texts = [p.format(c) for c in classes for p in prompts]
    emb = task.encode_texts(texts, batch_size).reshape(len(classes), len(prompts), -1).mean(axis=1)  # (C, D)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True).clip(min=1e-12)
    logits = images @ emb.T  # (N, C)
    probs = torch.softmax(torch.from_numpy(logits * float(task.scale().detach())), dim=-1).numpy()
    best = probs.argmax(axis=1)
    return Predictions(split=split, ids=[r.id for r in records],
                       targets=[None if r.label is None else str(r.label) for r in records],
                       outputs=[str(classes[i]) for i in best], scores=probs, classes=list(classes),
                       slices=[dict(r.slices) for r in records])


def robustness(task: Any, dataset: CaptionDataset, texts: np.ndarray, owner: np.ndarray,
               conditions: Mapping[str, Any], clean: Mapping[str, float], *, batch_size: int = 256,
               seed: int = 0) -> dict[str, dict[str, float]]:
    """Recall@1 both ways with the images perturbed by each condition (captions unchanged):
    ``{name: {"i2t_r1", "t2i_r1", "i2t_drop", "t2i_drop"}}``."""
    out: dict[str, dict[str, float]] = {}
    for name, pipeline in condition_pipelines(conditions, dataset.store.size, "modality.robustness", seed).items():
        perturbed = CaptionDataset(dataset.records, dataset.store, dataset.tokens, pipeline, sample=False)
        i2t, t2i = retrieval_ranks(embed_images(task, perturbed, batch_size), texts, owner)
        row = {"i2t_r1": float(np.mean(i2t <= 1)), "t2i_r1": float(np.mean(t2i <= 1))}
        row["i2t_drop"] = clean["i2t_r1"] - row["i2t_r1"]
        row["t2i_drop"] = clean["t2i_r1"] - row["t2i_r1"]
        out[name] = row
    return out


def evaluation_report(task: Any, dataset: CaptionDataset, split: str, *, ks: Sequence[int], prompts: Sequence[str],
                      classes: Sequence[str], conditions: Mapping[str, Any], batch_size: int = 256,
                      seed: int = 0) -> EvalReport:
    """The split's :class:`EvalReport`: retrieval metrics, zero-shot accuracy per class (when
    labeled), per-slice recall and robustness."""
    emb = embed(task, dataset, batch_size)
    i2t, t2i = retrieval_ranks(emb.images, emb.texts, emb.owner)
    report = EvalReport(split=split, metrics=recall_metrics(i2t, t2i, ks))
    n = len(dataset)
    report.metrics["images"], report.metrics["captions"] = float(n), float(len(emb.owner))
    report.metrics["chance_t2i_r1"] = chance_recall(n, 1)
    report.notes.append(f"text-to-image recall@1 {report.metrics['t2i_r1']:.3f} vs chance {chance_recall(n, 1):.3f} "
                        f"({n} images, {len(emb.owner)} captions)")
    report.per_slice = slice_recall(dataset.records, i2t, t2i, emb.owner)
    labeled = [r.label is not None for r in dataset.records]
    if classes and prompts and all(labeled):
        result = cls_eval.classification_report(zero_shot(task, emb.images, dataset.records, classes, prompts, split,
                                                          batch_size))
        report.metrics.update({f"zeroshot_{k}": v for k, v in result.metrics.items() if k != "count"})
        report.per_class = {name: {"zeroshot_" + k: v for k, v in row.items()} for name, row in result.per_class.items()}
        note = cls_eval.weakest_class_note(result)
        if note:
            report.notes.append(f"zero-shot: {note}")
    if conditions:
        report.robustness = robustness(task, dataset, emb.texts, emb.owner, conditions, report.metrics,
                                       batch_size=batch_size, seed=seed)
        for name, row in report.robustness.items():
            report.metrics[f"robust/{name}/i2t_r1"] = row["i2t_r1"]
            report.metrics[f"robust/{name}/t2i_r1"] = row["t2i_r1"]
    return report
