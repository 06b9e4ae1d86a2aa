"""The ``data:`` config node: where the data is, which slices matter, and the audit gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class GatesConfig:
    """Thresholds of the audit gates; ``enforce: false`` reports failures without stopping.

    Each gate's own settings live under its name (``data.gates.consistency.min_kappa=0.6``).
    """

    enforce: bool = True
    coverage: dict[str, Any] = field(default_factory=lambda: {"min_per_slice": 1})
    consistency: dict[str, Any] = field(default_factory=lambda: {"min_kappa": 0.70, "flag_below": 0.60})
    accuracy: dict[str, Any] = field(default_factory=lambda: {"min_gold_accuracy": 0.80})
    cleanliness: dict[str, Any] = field(
        default_factory=lambda: {"max_duplicate_fraction": 0.0, "max_leaked": 0, "max_corrupt_fraction": 0.05}
    )
    balance: dict[str, Any] = field(default_factory=lambda: {"min_per_class": 1, "max_imbalance_ratio": 20.0})
    documentation: dict[str, Any] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)  # settings of plugin checks, by check name


@dataclass
class DataConfig:
    """Where a run's data comes from.

    Relative paths in manifests resolve against ``root``; a path that escapes ``root`` is refused
    unless ``allow_outside_root`` is true.
    """

    root: str = "."
    train: Optional[str] = None
    val: Optional[str] = None
    test: Optional[str] = None
    format: str = "auto"  # reader name, or auto (from the file's extension / folder layout)
    slices: list[str] = field(default_factory=list)  # slice fields for coverage and per-slice metrics
    annotations: Optional[str] = None  # a Label Studio export with several annotators per task
    gold: Optional[str] = None  # gold items (known answers) for annotator accuracy
    allow_outside_root: bool = False
    guidelines_version: str = ""  # annotation guidelines version, recorded in the data card
    sources: list[str] = field(default_factory=list)  # provenance lines for the data card
    gates: GatesConfig = field(default_factory=GatesConfig)
