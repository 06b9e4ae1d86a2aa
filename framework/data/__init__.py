"""Data: records, readers, decoding probes, quality gates and the audit.

The surface a modality uses::

    from framework.data import load_bundle, probe_image

    def load_data(self, ctx):
        return load_bundle(ctx.data, format="image_folder", decoder_check=probe_image)

and the audit stage::

    from framework.data import run_audit, enforce
    report = run_audit(bundle, cfg.data, modality="vision", extra_checks=checks, out_dir=run_dir / "audit")
    enforce(report, cfg.data.gates.enforce)

``DataBundle.extras`` keys the audit reads: ``"gold"`` (record id -> known answer, filled by
``load_bundle``), ``"pred_probs"`` (out-of-sample class probabilities for label-issue
detection) and ``"item_losses"`` (record id -> loss, for easy-example dominance).
"""

from framework.data.audit import AuditReport, GateFailure, enforce, run_audit, run_model_checks
from framework.data.checks import CheckContext, CheckResult, Finding, QualityCheck
from framework.data.config import GATE_DEFAULTS, DataConfig, GatesConfig
from framework.data.dataset_card import DatasetCard, read_dataset_card
from framework.data.errors import DataError, DataErrors
from framework.data.loading import class_names, gold_answers, load_bundle, read_annotations
from framework.data.probes import ProbeResult, probe_audio, probe_image, probe_media
from framework.data.readers import (
    Collector,
    ReadOptions,
    detect_format,
    get_reader,
    list_readers,
    read_manifest,
    register_reader,
)
from framework.data.records import DataBundle, Quarantined, Record

__all__ = [
    "AuditReport",
    "CheckContext",
    "CheckResult",
    "Collector",
    "DataBundle",
    "DataConfig",
    "DataError",
    "DataErrors",
    "DatasetCard",
    "Finding",
    "GATE_DEFAULTS",
    "GateFailure",
    "GatesConfig",
    "ProbeResult",
    "QualityCheck",
    "Quarantined",
    "ReadOptions",
    "Record",
    "class_names",
    "detect_format",
    "enforce",
    "get_reader",
    "gold_answers",
    "list_readers",
    "load_bundle",
    "probe_audio",
    "probe_image",
    "probe_media",
    "read_annotations",
    "read_dataset_card",
    "read_manifest",
    "register_reader",
    "run_audit",
    "run_model_checks",
]
