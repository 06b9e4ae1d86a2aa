"""A framework for training models across modalities, with the data work around training.

Everything a plugin needs is importable from here (``docs/plugins.md`` documents each name)::

    from framework import (Modality, RunContext, StashKey, hookimpl,       # the contract
                           DataBundle, Record, Collector, load_bundle,     # data
                           CheckResult, Finding, check_settings,           # audit checks
                           Predictions, EvalReport, evaluation_report)     # evaluation

``import framework`` stays light: names other than the contract load on first use. See
``docs/architecture.md`` for the layout.

Beside the names here, a few submodules are public, each with its own ``__all__`` (listed in
``_PUBLIC_MODULES`` and documented in ``docs/plugins.md``): :mod:`framework.media` (image decoding
and augmentation for plugins that read images), :mod:`framework.evaluation.classification` (the
classification report and its parts) and the contract test kit :mod:`framework.testing` (with
:mod:`framework.testing.ddp`), which only tests may import. Every other module is internal: its
path and names may change without notice. A test holds ``plugins/`` and ``examples/`` to this.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable, Mapping

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
    "ProbeResult": "framework.data.probes",
    "IMAGE_EXTENSIONS": "framework.data.probes",
    "AUDIO_EXTENSIONS": "framework.data.probes",
    "render_chat": "framework.data.readers.text",
    "resolve_media": "framework.data.paths",
    "read_lines": "framework.data.textio",
    # tar shards (docs/data.md#shards): media inside shards, and streaming a split for training
    "open_media": "framework.data.shards",
    "LoadedSample": "framework.data.shards",
    "ShardStream": "framework.data.stream",
    "shard_stream": "framework.data.stream",
    "train_stream": "framework.data.stream",
    "split_shards": "framework.data.shards",
    # what the audit's near-duplicate search compares (for a plugin's own checks or data generators)
    "GATE_DEFAULTS": "framework.data.config",
    "normalise_text": "framework.data.fingerprints",
    "simhash": "framework.data.fingerprints",
    "audio_signature": "framework.data.fingerprints",
    "near_groups": "framework.data.dedup",
    # audit checks
    "QualityCheck": "framework.data.checks",
    "CheckContext": "framework.data.checks",
    "CheckResult": "framework.data.checks",
    "Finding": "framework.data.checks",
    "check_settings": "framework.data.checks",
    "media_infos": "framework.data.checks",
    # annotation
    "Consensus": "framework.annotation.adjudication",
    "export_review_tasks": "framework.annotation.review_tasks",
    # evaluation
    "Predictions": "framework.evaluation.types",
    "EvalReport": "framework.evaluation.types",
    "Metric": "framework.evaluation.types",
    "evaluation_report": "framework.evaluation.classification",
    "BenchmarkModel": "framework.evaluation.benchmarks",
    # training and export
    "Engine": "framework.training",
    "CHANCE_LOSS": "framework.training.metric_logger",
    "all_reduce_sum": "framework.training.distributed",
    "broadcast_object": "framework.training.distributed",
    "export_weights": "framework.training.checkpoint",
    "load_model_weights": "framework.training.checkpoint",
    "ServingFile": "framework.serving",
    "find_serving_file": "framework.serving",
    "export_onnx": "framework.serving",
    # released weights by hub name, on machines that may have no network
    "load_cached_first": "framework.hub",
    "NO_ADAPTER_LOOKUP": "framework.hub",
    "hub_reachable": "framework.hub",
    "timm_weights_reachable": "framework.hub",
    "offline_timm_message": "framework.hub",
    "RELEASED_WEIGHTS": "framework.hub",
    # files and config
    "atomic_write_text": "framework.atomic",
    "jsonable": "framework.json_values",
    "compose_config": "framework.compose",
    "modality_sections": "framework.compose",
    # errors
    "FrameworkError": "framework.errors",
}

# Submodules that are public besides the names above: module -> what it is (docs/plugins.md).
# Each defines ``__all__``; only those names are public. Test-kit modules are for tests only.
_PUBLIC_MODULES = {
    "framework.media": "image decoding, the decoded-image store and augmentation pipelines",
    "framework.evaluation.classification": "the classification report and its parts",
    "framework.testing": "the contract test kit (tests only)",
    "framework.testing.ddp": "gloo DDP workers for tests on CPU (tests only)",
}
_TEST_KIT = ("framework.testing",)  # public modules (and their submodules) production code must not import

__all__ = ["Modality", "RunContext", "Stash", "StashKey", "RunInfo", "hookimpl", "__version__", *_LAZY]


def _lazy_exports(module: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names load on first use (PEP 562).

    ``table`` maps each name to the module that defines it; a loaded name is kept in the package's
    namespace, so ``__getattr__`` runs once per name. Used by ``framework`` and ``framework.media``.
    """

    def getattr_(name: str) -> Any:
        if name in table:
            value = getattr(import_module(table[name]), name)
            setattr(sys.modules[module], name, value)
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(sys.modules[module].__all__)

    return getattr_, dir_


_load, _names = _lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:  # a def, so type checkers see the module's lazy names as Any
    return _load(name)


def __dir__() -> list[str]:
    return _names()
