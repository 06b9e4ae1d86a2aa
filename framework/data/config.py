"""The ``data:`` config node: where the data is, which slices matter, and the audit gates.

Each gate's settings are a small mapping under ``data.gates.<gate>``; the defaults below are
the whole list of keys a gate reads, and a key that is not listed is an error at audit time
that names the valid ones (so ``data.gates.consistency.min_kapa=0.6`` fails loudly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from framework.data.checks import registered_check_defaults

GATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "coverage": {
        "min_per_slice": 1,  # int, or {field: int}, or {field: {value: int}}
        "expected": {},  # {field: [values that must be present]}; absent values count as 0
        "splits": ["train"],  # splits whose slice counts must meet the minimum
        "min_records": 1,  # records every configured split must hold (an empty split fails)
        "max_unlabeled_fraction": 0.0,  # records without a label, per split, when the modality needs labels
    },
    "consistency": {
        "min_kappa": 0.70,  # gate threshold on Cohen's / Fleiss' kappa or Krippendorff's alpha
        "flag_below": 0.60,  # below this the model would learn disagreement
        "min_annotator_kappa": 0.0,  # per annotator vs consensus; 0 reports without failing
        "outlier_margin": 0.25,  # flag an annotator this far below the others' median kappa (3+ annotators)
    },
    "accuracy": {
        "min_gold_accuracy": 0.80,  # each annotator's accuracy on gold / trap items
        "min_gold_items": 1,  # annotators with fewer gold answers are reported, not judged
    },
    "cleanliness": {
        "max_duplicate_fraction": 0.0,  # exact duplicates beyond the first copy / all items
        "max_near_duplicate_fraction": 0.0,  # near duplicates (not exact) / all items
        "max_leaked": 0,  # items of val/test that (near-)duplicate a train item
        "max_corrupt_fraction": 0.05,  # missing + undecodable / all items
        "max_empty_label_fraction": 0.0,  # empty labels or transcripts among labeled records
        "near_duplicates": True,  # false skips perceptual hashing (exact duplicates still found)
        "image_hamming": 4,  # max Hamming distance of 64-bit pHashes for a near duplicate
        "audio_hamming": 4,  # same, for the 64-bit spectral fingerprint
        "text_hamming": 3,  # same, for 64-bit SimHash of word trigrams
    },
    "balance": {
        "min_per_class": 1,  # train examples per class (the vision plugin sets 200)
        "max_imbalance_ratio": 20.0,  # largest class / smallest class, in train
        "easy_loss_below": 0.05,  # per-item loss under which an item counts as easy
        "max_easy_fraction": 0.90,  # fraction of easy items above which easy examples dominate
    },
    "documentation": {
        "require_guidelines_version": False,
        "require_sources": False,
    },
    "label_issues": {
        "max_issue_fraction": 0.10,  # confident-learning label issues / scored items (a warning)
    },
}


def _defaults(name: str) -> Any:
    return field(default_factory=lambda: dict(GATE_DEFAULTS[name]))


@dataclass
class GatesConfig:
    """Thresholds of the audit gates; ``enforce: false`` reports failures without stopping.

    Each gate's own settings live under its name (``data.gates.consistency.min_kappa=0.6``);
    keys left out take the defaults in :data:`GATE_DEFAULTS`. Plugin checks read
    ``data.gates.plugins.<check name>``.
    """

    enforce: bool = True
    coverage: dict[str, Any] = _defaults("coverage")
    consistency: dict[str, Any] = _defaults("consistency")
    accuracy: dict[str, Any] = _defaults("accuracy")
    cleanliness: dict[str, Any] = _defaults("cleanliness")
    balance: dict[str, Any] = _defaults("balance")
    documentation: dict[str, Any] = _defaults("documentation")
    label_issues: dict[str, Any] = _defaults("label_issues")
    # Settings of plugin checks, by check name; each check's `defaults` are registered here.
    plugins: dict[str, Any] = field(default_factory=lambda: registered_check_defaults())


@dataclass
class DataConfig:
    """Where a run's data comes from.

    Relative paths in manifests resolve against ``root``; a path that escapes ``root`` is refused
    unless ``allow_outside_root`` is true.
    """

    root: str = "."
    # A path, or several weighted sources: [a.jsonl, b.jsonl] or [{path: a.jsonl, weight: 3}, ...]
    # (framework/data/sources.py); `hf:owner/name` names a Hugging Face hub dataset.
    train: Any = None
    val: Optional[str] = None
    test: Optional[str] = None
    format: str = "auto"  # reader name, or auto (from the file's extension / folder layout)
    # record field -> input column (data.columns.text=sentence); other fields with a +: +data.columns.output=answer
    columns: dict[str, Optional[str]] = field(default_factory=lambda: dict.fromkeys(("text", "label", "audio", "image")))
    slices: list[str] = field(default_factory=list)  # slice fields for coverage and per-slice metrics
    annotations: Optional[str] = None  # a Label Studio export (.json) or flat JSONL of annotations
    gold: Optional[str] = None  # gold items (known answers), JSONL of {"id", "label"}
    gold_field: Optional[str] = None  # a record / Label Studio task-data field holding the known answer
    allow_outside_root: bool = False
    pred_probs: Optional[str] = None  # out-of-sample class probabilities (JSONL id, probs) for label issues
    unlabeled: Optional[str] = None  # items to pre-annotate with a trained model (stage preannotate)
    unlabeled_format: str = "auto"  # reader for `unlabeled` (a manifest without labels, usually)
    probe_media: bool = True  # decode every media file while loading; failures are quarantined
    shuffle_buffer: int = 1000  # samples per loader worker's shuffle buffer when a train split of tar shards is streamed
    guidelines_version: str = ""  # annotation guidelines version, recorded in the data card
    sources: list[str] = field(default_factory=list)  # provenance lines for the data card
    gates: GatesConfig = field(default_factory=GatesConfig)
