"""The misalignment audit: pairs whose caption does not describe their image.

Mislabeled pairs teach a contrastive model to attach words to the wrong pictures (a few percent
are enough to make it describe things that are not there). The trained model scores every pair
of the audited splits, and a pair is suspect when

* ``outlier``: its image-caption similarity is far below the others' (more than
  ``outlier_mads`` median absolute deviations under the median, a robust z-score), or
* ``better_match``: its caption is closer to another image than to its own by more than
  ``better_margin`` (cosine similarity), or
* ``hard_to_learn``: during training, its margin over the hardest in-batch negative, averaged over
  every step that drew it, was more than ``training_mads`` MADs below the median pair's. A model
  partly memorises wrong pairs by the end of training, which hides them from the two scores above;
  how long a pair resisted being learned does not fade that way (the small-loss / area-under-the-
  margin idea from the noisy-label literature). Only after training in the same process.

Contributed through ``framework_quality_checks`` as a check with ``needs_model = True``: the audit
before training lists it as pending; it runs after training (or with ``stages=[audit]
checkpoint=PATH``) and writes

* ``audit/suspect_pairs.jsonl``: one line per suspect pair, most suspect first;
* ``audit/misalignment_review.json``: the same pairs as a Label Studio import (image + caption,
  the reasons, and the caption the model finds closest to the image as a suggestion), written
  with :func:`framework.annotation.review_tasks.export_review_tasks`;

and reports the suspected rate in the data card. Settings: ``data.gates.plugins.misalignment``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from framework import jsonable
from framework.data.checks import CheckContext, CheckResult, Finding, check_settings
from framework.data.records import DataBundle, Record

SUSPECTS_FILE = "suspect_pairs.jsonl"
REVIEW_FILE = "misalignment_review.json"
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class PairScores:
    """Per-caption scores of a split: ``similarity`` to its own image, its ``robust_z`` among all
    pairs, the ``best_other`` similarity to any other image and which image that is."""

    similarity: np.ndarray  # (M,)
    robust_z: np.ndarray  # (M,)
    best_other: np.ndarray  # (M,)
    best_other_image: np.ndarray  # (M,) image index


def score_pairs(images: np.ndarray, texts: np.ndarray, owner: np.ndarray) -> PairScores:
    """Score every caption against its own image and every other image.

    Args:
        images: ``(N, D)`` L2-normalised image embeddings.
        texts: ``(M, D)`` L2-normalised caption embeddings.
        owner: ``(M,)`` the image index of each caption.
    """
    sim = images @ texts.T  # (N, M)
    cols = np.arange(len(owner))
    own = sim[owner, cols]  # (M,)
    others = sim.copy()
    others[owner, cols] = -np.inf
    best_image = others.argmax(axis=0) if images.shape[0] > 1 else np.zeros(len(owner), dtype=np.int64)
    best = others[best_image, cols] if images.shape[0] > 1 else np.full(len(owner), -np.inf)
    return PairScores(own, robust_z(own), best, best_image)


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(values - median) / (MAD * 1.4826)`` over the finite values; NaN stays NaN."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return np.full(values.shape, np.nan)
    median = float(np.median(finite))
    mad = float(np.median(np.abs(finite - median))) * MAD_TO_SIGMA
    return (values - median) / max(mad, 1e-6)


def suspects(scores: PairScores, *, outlier_mads: float, better_margin: float,
             training_z: np.ndarray | None = None, training_mads: float = 2.0) -> dict[int, list[str]]:
    """Caption index -> reasons (``outlier``, ``better_match``, ``hard_to_learn``), for the suspect
    captions; ``training_z`` is the robust z-score of each pair's mean training margin (NaN where
    the pair was not trained on)."""
    out: dict[int, list[str]] = {}
    for m in range(len(scores.similarity)):
        reasons = []
        if training_z is not None and training_z[m] < -training_mads:  # NaN compares False
            reasons.append("hard_to_learn")
        if scores.robust_z[m] < -outlier_mads:
            reasons.append("outlier")
        if scores.best_other[m] - scores.similarity[m] > better_margin:
            reasons.append("better_match")
        if reasons:
            out[m] = reasons
    return out


@dataclass
class MisalignmentCheck:
    """Flags image-caption pairs the trained model finds misaligned (see the module docstring).

    Settings (``data.gates.plugins.misalignment``): ``splits``, ``outlier_mads``, ``better_margin``,
    ``training_mads`` (``hard_to_learn``; ``null`` turns it off), ``max_suspect_fraction`` (pass
    threshold), ``gate``, ``batch_size``.
    """

    name: str = "misalignment"
    needs_model: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "splits": ["train"],
        "outlier_mads": 4.0,
        "better_margin": 0.1,
        "training_mads": 3.0,
        "max_suspect_fraction": 0.05,
        "gate": False,
        "batch_size": 256,
    }

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        task, run = ctx.model, ctx.run
        records = [r for split in s["splits"] for r in data.records(split)]
        if task is None or run is None or not records:
            why = ("no trained model" if task is None
                   else "no run context (run_model_checks(..., run=ctx))" if run is None
                   else f"no records in {s['splits']}")
            return CheckResult(self.name, True, bool(s["gate"]), f"not applicable: {why}")
        from plugins.alignment.data import CaptionDataset, TokenCache, captions_of
        from plugins.alignment.evaluate import embed
        from plugins.alignment.modality import TRAINING_MARGINS_KEY, store_for

        captions = [c for r in records for c in captions_of(r)]
        dataset = CaptionDataset(records, store_for(run, task), TokenCache(task.tokenize, captions), None,
                                 sample=False)
        emb = embed(task, dataset, int(s["batch_size"]))
        scores = score_pairs(emb.images, emb.texts, emb.owner)
        margins = training_margins(run.stash.get(TRAINING_MARGINS_KEY), records, dataset.captions)
        use_training = s["training_mads"] is not None and np.isfinite(margins).any()
        flagged = suspects(scores, outlier_mads=float(s["outlier_mads"]), better_margin=float(s["better_margin"]),
                           training_z=robust_z(margins) if use_training else None,
                           training_mads=float(s["training_mads"] or 0.0))
        rows = suspect_rows(records, dataset.captions, emb.owner, scores, flagged, emb.images, emb.texts, margins)
        paths = write_suspects(rows, records, ctx.out_dir, data.root)
        rate = len(flagged) / len(emb.owner)
        passed = rate <= float(s["max_suspect_fraction"])
        kinds = {k: sum(k in v for v in flagged.values()) for k in ("outlier", "better_match", "hard_to_learn")}
        dynamics = (f", {kinds['hard_to_learn']} hard to learn in training" if use_training
                    else " (no training dynamics: scored with the final weights only)")
        summary = (f"{len(flagged)} of {len(emb.owner)} image-caption pairs suspected misaligned ({rate:.1%}, "
                   f"allowed {float(s['max_suspect_fraction']):.1%}): {kinds['better_match']} match another image "
                   f"better, {kinds['outlier']} similarity outliers{dynamics}; see audit/{SUSPECTS_FILE}")
        findings = [Finding(f"misaligned_{'+'.join(r['reasons'])}", (r["id"],),
                            f"caption {r['caption_index']} {r['caption']!r}: similarity {r['similarity']:.2f}, "
                            f"{r['best_other_id']} {r['best_other_similarity']:.2f}") for r in rows]
        return CheckResult(
            self.name, passed, bool(s["gate"]), summary,
            measured={"pairs": len(emb.owner), "suspect": len(flagged), "suspected_rate": rate, **kinds,
                      "median_similarity": float(np.median(scores.similarity)), "files": [p.name for p in paths]},
            findings=findings,
            override=f"data.gates.plugins.{self.name}.max_suspect_fraction=<fraction> (after reviewing "
                     f"audit/{REVIEW_FILE})",
        )


def training_margins(known: Mapping[tuple[str, int], float] | None, records: Sequence[Record],
                     captions: Sequence[Sequence[str]]) -> np.ndarray:
    """``(M,)`` each audited pair's mean margin during training, from ``known`` (what the
    modality's ``train`` left in the run's stash, keyed by (record id, caption index)), NaN for
    pairs not trained on or when the task was not trained in this process (``known`` is ``None``:
    ``stages=[audit] checkpoint=...``)."""
    known = known or {}
    return np.array([known.get((r.id, k), np.nan) for r, caps in zip(records, captions) for k in range(len(caps))],
                    dtype=np.float64)


def suspect_rows(records: Sequence[Record], captions: Sequence[Sequence[str]], owner: np.ndarray, scores: PairScores,
                 flagged: dict[int, list[str]], images: np.ndarray, texts: np.ndarray,
                 margins: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One JSON-ready row per suspect caption, most suspect (largest better-match gap) first."""
    flat = [c for caps in captions for c in caps]
    first = np.concatenate([[0], np.cumsum([len(c) for c in captions])])  # caption offset of each image
    rows = []
    for m, reasons in flagged.items():
        i = int(owner[m])
        j = int(scores.best_other_image[m])
        closeness = images[i] @ texts.T  # (M,) every caption against this image
        closest = int(np.argmax(closeness))  # the caption the model finds closest to it
        rows.append({
            "id": records[i].id, "split": records[i].split, "source": records[i].source,
            "path": str(records[i].media), "caption_index": int(m - first[i]), "caption": flat[m],
            "reasons": reasons, "similarity": float(scores.similarity[m]), "robust_z": float(scores.robust_z[m]),
            "best_other_id": records[j].id, "best_other_similarity": float(scores.best_other[m]),
            "suggested_caption": flat[closest], "suggested_similarity": float(closeness[closest]),
            "training_margin": None if margins is None or not np.isfinite(margins[m]) else float(margins[m]),
        })
    rows.sort(key=lambda r: r["best_other_similarity"] - r["similarity"], reverse=True)
    return rows


def write_suspects(rows: list[dict[str, Any]], records: Sequence[Record], out_dir: Path, root: Path) -> list[Path]:
    """``suspect_pairs.jsonl`` and the Label Studio review queue ``misalignment_review.json``."""
    from framework.annotation.adjudication import Consensus
    from framework.annotation.review_tasks import export_review_tasks
    from framework.atomic import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SUSPECTS_FILE
    atomic_write_text(path, "".join(json.dumps(jsonable(r), ensure_ascii=False) + "\n" for r in rows))
    by_id = {r.id: r for r in records}
    items, reasons, suggestions = [], {}, {}
    for row in rows:
        base = by_id[row["id"]]
        item_id = f"{row['id']}#caption{row['caption_index']}"
        items.append(Record(id=item_id, split=base.split, source=base.source, media=base.media, text=row["caption"],
                            slices=base.slices))
        reasons[item_id] = [*row["reasons"], f"closer to {row['best_other_id']} "
                            f"({row['best_other_similarity']:.2f} vs {row['similarity']:.2f})"]
        suggestions[item_id] = Consensus(row["suggested_caption"], confidence=float(row["suggested_similarity"]))
    review = export_review_tasks(items, [], reasons, out_dir / REVIEW_FILE, label_type="text", consensus=suggestions,
                                 root=root)
    return [path, review]
