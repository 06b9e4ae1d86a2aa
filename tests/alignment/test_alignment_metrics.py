"""Retrieval metrics and misalignment scoring on planted embeddings (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from framework.data.records import Record
from plugins.alignment.evaluate import recall_metrics, retrieval_ranks, slice_recall
from plugins.alignment.misalignment import robust_z, score_pairs, suspects


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_recall_at_k_and_mean_rank_on_planted_embeddings() -> None:
    images = np.eye(4)  # (4, 4): image i points along axis i
    texts = _unit(np.array([
        [1.0, 0, 0, 0], [1.0, 0.1, 0, 0],      # image 0: on its axis
        [0, 0.5, 1.0, 0], [0, 0.6, 1.0, 0],    # image 1: both closer to image 2 than to image 1
        [0, 0.9, 1.0, 0], [0, 0, 1.0, 0.2],    # image 2: the first scores 0.67 with image 1
        [1.0, 0, 0, 0.8], [1.0, 0, 0, 0.9],    # image 3: both closer to image 0
    ]))
    owner = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    i2t, t2i = retrieval_ranks(images, texts, owner)
    # image 1's best own caption (0.51) is beaten by image 2's first (0.67): rank 2
    assert i2t.tolist() == [1, 2, 1, 1]
    assert t2i.tolist() == [1, 1, 2, 2, 1, 1, 2, 2]
    m = recall_metrics(i2t, t2i, [1, 5, 10])
    assert m["i2t_r1"] == pytest.approx(0.75) and m["i2t_r5"] == 1.0
    assert m["t2i_r1"] == pytest.approx(0.5) and m["t2i_r5"] == 1.0
    assert m["i2t_mean_rank"] == pytest.approx(1.25) and m["t2i_mean_rank"] == pytest.approx(1.5)
    assert m["mean_recall"] == pytest.approx((0.75 + 1 + 1 + 0.5 + 1 + 1) / 6)


def test_ties_rank_against_the_query() -> None:
    i2t, t2i = retrieval_ranks(np.ones((3, 2)) / np.sqrt(2), np.ones((3, 2)) / np.sqrt(2), np.arange(3))
    assert i2t.tolist() == [3, 3, 3] and t2i.tolist() == [3, 3, 3]  # a constant model is not rewarded


def test_slice_recall_counts_queries_of_each_slice() -> None:
    records = [Record(id=str(i), split="test", source="m:1", slices={"size": s}) for i, s in enumerate("abab")]
    i2t, t2i, owner = np.array([1, 2, 1, 1]), np.array([1, 1, 3, 1]), np.arange(4)
    out = slice_recall(records, i2t, t2i, owner)
    assert out["size=a"] == {"i2t_r1": 1.0, "t2i_r1": 0.5, "count": 2.0}
    assert out["size=b"] == {"i2t_r1": 0.5, "t2i_r1": 1.0, "count": 2.0}


def test_planted_caption_swaps_are_flagged_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    n, dim = 60, 16
    images = _unit(rng.normal(size=(n, dim)))
    owner = np.repeat(np.arange(n), 2)  # two captions per image
    texts = _unit(images[owner] + rng.normal(scale=0.15, size=(2 * n, dim)))
    swapped = [(3, 40), (11, 27), (50, 8)]  # caption 0 of these images describes the partner
    planted = set()
    for a, b in swapped:
        texts[[2 * a, 2 * b]] = texts[[2 * b, 2 * a]]
        planted |= {2 * a, 2 * b}
    flagged = suspects(score_pairs(images, texts, owner), outlier_mads=4.0, better_margin=0.1)
    assert set(flagged) == planted
    assert all("better_match" in flagged[m] for m in planted)


def test_similarity_outliers_are_flagged_without_a_better_match() -> None:
    rng = np.random.default_rng(1)
    images = _unit(rng.normal(size=(40, 8)))
    texts = _unit(images + rng.normal(scale=0.1, size=(40, 8)))
    texts[5] = _unit(-images[5:6] * 0.1 + rng.normal(size=(1, 8)))[0]  # a caption about nothing here
    scores = score_pairs(images, texts, np.arange(40))
    flagged = suspects(scores, outlier_mads=4.0, better_margin=10.0)  # margin off: outliers only
    assert flagged == {5: ["outlier"]}


def test_pairs_that_resisted_training_are_flagged_though_the_final_model_memorised_them() -> None:
    # The final embeddings match every caption to its own image (a memorised swap looks clean) ...
    images = np.eye(6, dtype=np.float32)
    texts = np.eye(6, dtype=np.float32)
    owner = np.arange(6)
    scores = score_pairs(images, texts, owner)
    assert suspects(scores, outlier_mads=4.0, better_margin=0.1) == {}
    # ... but pair 4's margin stayed far below the others' during training; pair 5 was never drawn.
    margins = np.array([0.50, 0.55, 0.45, 0.52, -0.30, np.nan])
    z = robust_z(margins)
    assert np.isnan(z[5]) and z[4] < -3
    assert suspects(scores, outlier_mads=4.0, better_margin=0.1, training_z=z, training_mads=3.0) == {4: ["hard_to_learn"]}


def test_drift_features_add_caption_length_to_the_image_statistics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from plugins.alignment.modality import AlignmentModality

    Image.new("RGB", (40, 30), (200, 200, 200)).save(tmp_path / "bright.png")
    Image.new("L", (20, 20), 10).save(tmp_path / "dark.png")
    records = [
        Record(id="a", split="new", source="m", media=tmp_path / "bright.png", label=None,
               fields={"caption": "a big red circle on the left"}),
        Record(id="b", split="new", source="m", media=tmp_path / "dark.png", label=None, fields={}),
    ]
    out = AlignmentModality().drift_features(None, records)  # type: ignore[arg-type]
    assert out["caption_words"] == [7, None]  # an image without a caption has no length
    assert (out["width"], out["height"], out["mode"]) == ([40, 20], [30, 20], ["RGB", "L"])
    assert out["brightness"] == pytest.approx([200.0, 10.0], abs=1.0)
