"""The review sample: configured size, strata by predicted class, least confident first."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from framework.data.records import Record
from framework.evaluation.types import Predictions
from framework.monitoring import review_sample, write_review_queue
from framework.monitoring.review_sample import allocate, sample_size


def _predictions(n_per_class: dict[str, int], seed: int = 3) -> Predictions:
    rng = np.random.default_rng(seed)
    classes = list(n_per_class)
    ids, outputs, scores = [], [], []
    for c, n in n_per_class.items():
        for i in range(n):
            top = rng.uniform(0.4, 1.0)
            row = np.full(len(classes), (1 - top) / (len(classes) - 1))
            row[classes.index(c)] = top
            ids.append(f"{c}-{i}")
            outputs.append(c)
            scores.append(row)
    return Predictions("monitor", ids, [None] * len(ids), outputs, scores=np.array(scores), classes=classes)


def test_sample_has_the_configured_size_and_proportional_strata() -> None:
    predictions = _predictions({"cat": 300, "dog": 150, "fox": 50})
    sample = review_sample(predictions, share=0.1)
    assert len(sample.ids) == 50 == len(set(sample.ids))
    assert sample.strata == {"cat": 30, "dog": 15, "fox": 5}
    assert Counter(sample.stratum.values()) == Counter(sample.strata)
    # Within each predicted class, the chosen items are its least confident ones.
    top = np.asarray(predictions.scores).max(axis=1)
    conf = dict(zip(predictions.ids, top))
    for name, k in sample.strata.items():
        members = sorted((conf[i], i) for i, o in zip(predictions.ids, predictions.outputs) if o == name)
        assert {i for i, s in sample.stratum.items() if s == name} == {i for _, i in members[:k]}


def test_default_share_is_two_percent_with_at_least_one_item() -> None:
    predictions = _predictions({"a": 120, "b": 80})
    assert len(review_sample(predictions).ids) == 4  # 2% of 200
    assert len(review_sample(_predictions({"a": 10, "b": 5})).ids) == 1  # 2% of 15 rounds to 0: one item
    assert sample_size(0, 0.02) == 0


def test_every_predicted_class_gets_an_item_when_the_sample_has_room() -> None:
    assert allocate({"a": 980, "b": 10, "c": 10}, 10) == {"a": 8, "b": 1, "c": 1}
    assert allocate({"a": 980, "b": 10, "c": 10}, 2) == {"a": 2, "b": 0, "c": 0}
    assert allocate({"a": 3, "b": 1}, 4) == {"a": 3, "b": 1}
    assert sum(allocate({"a": 7, "b": 6, "c": 5}, 9).values()) == 9


def test_review_queue_is_a_label_studio_import_with_pre_annotations(tmp_path: Path) -> None:
    predictions = _predictions({"cat": 30, "dog": 20})
    records = [Record(id=i, split="monitor", source="batch.jsonl:1", media=str(tmp_path / f"{i}.png"))
               for i in predictions.ids]
    sample = review_sample(predictions, share=0.1)
    path = write_review_queue(sample, predictions, records, tmp_path / "review.json", label_type="class",
                              model_version="run-1", root=tmp_path)
    tasks = json.loads(path.read_text())
    assert [t["data"]["item_id"] for t in tasks] == sample.ids
    first = tasks[0]
    assert first["data"]["image"] == f"/data/local-files/?d={sample.ids[0]}.png"
    assert first["predictions"][0]["result"][0]["value"]["choices"] == [sample.stratum[sample.ids[0]]]
    assert first["meta"]["stratum"] == sample.stratum[sample.ids[0]]
    assert first["predictions"][0]["score"] == first["meta"]["confidence"]
