"""A framework for training models across modalities, with the data work around training.

Everything a plugin needs is importable from here (``docs/plugins.md`` documents each name)::

    from framework import (Modality, RunContext, StashKey, hookimpl,       # the contract
                           DataBundle, Record, Collector, load_bundle,     # data
                           CheckResult, Finding, check_settings,           # audit checks
                           Predictions, EvalReport, evaluation_report)     # evaluation

``import framework`` stays light: names other than the contract load on first use. The contract
test kit is :mod:`framework.testing`. See ``docs/architecture.md`` for the layout.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from framework.hookspecs import RunInfo, hookimpl
from framework.modality import Modality, RunContext, Stash, StashKey

__version__ = "0.1.0"

# The curated public API: name -> module that defines it (loaded lazily, see __getattr__).
_LAZY = {
    # data
    "DataBundle": "framework.data.records",
    "Record": "framework.data.records",
    "Quarantined": "framework.data.records",
    "DataError": "framework.data.errors",
    "load_bundle": "framework.data.loading",
    "register_reader": "framework.data.readers",
    "ReaderRegistry": "framework.data.readers",
    "ReadOptions": "framework.data.readers",
    "Collector": "framework.data.readers",
    "get_field": "framework.data.readers",
    "probe_image": "framework.data.probes",
    "probe_audio": "framework.data.probes",
    # audit checks
    "QualityCheck": "framework.data.checks",
    "CheckContext": "framework.data.checks",
    "CheckResult": "framework.data.checks",
    "Finding": "framework.data.checks",
    "check_settings": "framework.data.checks",
    # evaluation
    "Predictions": "framework.evaluation.types",
    "EvalReport": "framework.evaluation.types",
    "Metric": "framework.evaluation.types",
    "evaluation_report": "framework.evaluation.classification",
    # training
    "Engine": "framework.training",
    # errors
    "FrameworkError": "framework.errors",
}

__all__ = ["Modality", "RunContext", "Stash", "StashKey", "RunInfo", "hookimpl", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'framework' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
