"""A review sample of a batch's predictions, for the next annotation round.

:func:`review_sample` picks ``share`` of the batch (at least one item), stratified by predicted
class: each class gets its share of the sample in proportion to how often the model predicted it
(largest remainders; every predicted class gets one item when the sample has room), and within a
class the items the model was least confident about come first. :func:`write_review_queue` writes
them as Label Studio tasks with the model's prediction as a pre-annotation
(:func:`framework.annotation.review_tasks.export_preannotations`), so annotators correct rather than
start from nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from framework.data.records import Record
from framework.evaluation.types import Predictions
from framework.monitoring.drift import confidences

ALL = "all"  # the one stratum of predictions that are not classes


@dataclass
class ReviewSample:
    """The items chosen for review.

    Attributes:
        ids: Chosen record ids, stratum by stratum, least confident first.
        stratum: Chosen id -> its stratum (the predicted class, or ``all``).
        confidence: Chosen id -> the model's confidence (``None`` when the modality gives none).
        strata: Stratum -> items chosen from it.
        share: The share asked for.
        population: Items in the batch.
    """

    ids: list[str]
    stratum: dict[str, str]
    confidence: dict[str, float | None]
    strata: dict[str, int]
    share: float
    population: int


def sample_size(population: int, share: float, minimum: int = 1) -> int:
    """``round(share * population)``, at least ``minimum``, at most ``population``."""
    return min(population, max(minimum, int(math.floor(share * population + 0.5))))


def allocate(counts: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` over strata in proportion to ``counts`` (largest remainders).

    When ``total`` is at least the number of strata, each stratum gets at least one item (taken
    from the stratum most over its quota); no stratum gets more items than it has.
    """
    population = sum(counts.values())
    if total <= 0 or population == 0:
        return {n: 0 for n in counts}
    total = min(total, population)
    quota = {n: total * c / population for n, c in counts.items()}
    given = {n: min(counts[n], math.floor(quota[n])) for n in counts}
    while sum(given.values()) < total:
        room = [n for n in counts if given[n] < counts[n]]
        given[max(room, key=lambda n: (quota[n] - given[n], counts[n], n))] += 1
    if total >= len(counts):
        for empty in sorted(n for n in counts if given[n] == 0):
            donor = max((n for n in counts if given[n] > 1), key=lambda n: (given[n] - quota[n], n))
            given[donor] -= 1
            given[empty] += 1
    return given


def review_sample(predictions: Predictions, share: float = 0.02, *, label_type: str = "class",
                  minimum: int = 1) -> ReviewSample:
    """Choose ``share`` of ``predictions`` for review (see the module doc)."""
    ids = list(predictions.ids)
    conf = confidences(predictions)
    strata_of = [str(o) if label_type == "class" else ALL for o in predictions.outputs]
    total = sample_size(len(ids), share, minimum) if ids else 0
    quota = allocate(dict(Counter(strata_of)), total)
    chosen: list[str] = []
    stratum: dict[str, str] = {}
    confidence: dict[str, float | None] = {}
    for name in sorted(quota, key=lambda n: (-quota[n], n)):
        members = [i for i, s in enumerate(strata_of) if s == name]
        members.sort(key=lambda i: (float(conf[i]) if conf is not None else 0.0, ids[i]))  # least confident first
        for i in members[: quota[name]]:
            chosen.append(ids[i])
            stratum[ids[i]] = name
            confidence[ids[i]] = None if conf is None else float(conf[i])
    strata = {n: q for n, q in quota.items() if q}
    return ReviewSample(chosen, stratum, confidence, strata, share, len(ids))


def write_review_queue(sample: ReviewSample, predictions: Predictions, records: Sequence[Record], path: Path, *,
                       label_type: str, model_version: str, root: Path | None = None) -> Path:
    """Write the sample as a Label Studio import: the items, the model's predictions as
    pre-annotations, and ``meta`` saying why each was chosen. Returns ``path``."""
    from framework.annotation.review_tasks import export_preannotations

    index = {item: n for n, item in enumerate(predictions.ids)}
    rows = [index[i] for i in sample.ids]
    scores = None if predictions.scores is None else np.asarray(predictions.scores)[rows]
    subset = Predictions(split=predictions.split, ids=list(sample.ids),
                         targets=[predictions.targets[n] for n in rows], outputs=[predictions.outputs[n] for n in rows],
                         scores=scores, classes=list(predictions.classes))
    if scores is None and predictions.extras.get("confidence") is not None:
        subset.extras["confidence"] = [predictions.extras["confidence"][n] for n in rows]
    meta = {i: {"review_reason": "monitor sample: least confident within its predicted class",
                "stratum": sample.stratum[i], "confidence": sample.confidence[i]} for i in sample.ids}
    return export_preannotations(subset, records, path, label_type=label_type, model_version=model_version,
                                 root=root, meta=meta)
