"""Watching a trained model after export: a new batch against the training reference.

:func:`monitor` loads a trained run (its export, else its newest checkpoint, with the resolved
config stored beside the weights), reads the new batch (a manifest or folder the run's modality
reads), predicts on it and on the reference split, and compares the two on the modality's input
features (:meth:`framework.Modality.drift_features`) and the model's own signals. It writes, into
``RUN_DIR/monitor/`` unless told otherwise:

* ``drift.json``: one verdict per signal (PSI, KS / chi-square / MMD), the sizes compared and
  the review sample's strata;
* ``report.html``: the drift section with reference-against-batch plots;
* ``review_tasks.json``: the review sample as a Label Studio import with pre-annotations.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from framework.atomic import atomic_write_text
from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError
from framework.modality import Modality, RunContext
from framework.monitoring.drift import DriftConfig, DriftReport, compare, model_signals
from framework.monitoring.review_sample import review_sample, write_review_queue
from framework.plugins import Plugins

log = logging.getLogger(__name__)

MONITOR_SPLIT = "monitor"  # the split name of the new batch's records


@dataclass
class TrainedRun:
    """A trained run, loaded for prediction: its modality, a context, the task and the data."""

    modality: Modality
    ctx: RunContext
    task: Any
    data: DataBundle
    weights: Path


def weights_of(run_dir: Path) -> Path:
    """The weights a run serves: ``export/`` when written, else its newest valid checkpoint."""
    from framework.training import latest_checkpoint

    export = Path(run_dir) / "export"
    if (export / "model.safetensors").is_file() and (export / "config.yaml").is_file():
        return export
    checkpoint = latest_checkpoint(Path(run_dir))
    if checkpoint is None:
        raise FrameworkError(f"{run_dir} has neither export/ nor a valid checkpoint; pass a trained run's "
                             f"directory, or --weights PATH to an export or checkpoint directory")
    return checkpoint


def load_trained(run_dir: Path, out_dir: Path, *, weights: Path | None = None,
                 plugins: Plugins | None = None) -> TrainedRun:
    """Rebuild a run's modality, data and task from the config stored with its weights.

    Args:
        run_dir: The trained run's directory.
        out_dir: Where the monitor writes (the context's run dir).
        weights: An export or checkpoint directory; default :func:`weights_of`.
        plugins: The plugin facade; the installed plugins when omitted.
    """
    from framework.compose import stored_run_context
    from framework.training import load_trained_weights

    source = Path(weights) if weights is not None else weights_of(run_dir)
    config_path = source / "config.yaml"
    if not config_path.is_file():
        raise FrameworkError(f"{source} has no config.yaml beside its weights; point --weights at an export "
                             f"or checkpoint directory written by python -m framework")
    cfg = OmegaConf.create(config_path.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    modality, ctx = stored_run_context(cfg, out_dir, plugins)
    data = modality.load_data(ctx)
    task = modality.build_task(ctx, data)
    load_trained_weights(task, source, what="--weights")
    ctx.classes = list(data.classes)
    log.info("monitor: loaded %s weights from %s", modality.name, source)
    return TrainedRun(modality, ctx, task, data, source)


def reference_records(data: DataBundle, cfg: DriftConfig) -> list[Record]:
    """The reference split (``train`` when absent), subsampled to ``cfg.max_reference``, seeded."""
    split = cfg.reference_split if data.splits.get(cfg.reference_split) else "train"
    records = data.records(split)
    if not records:
        raise FrameworkError(f"the run's data has no {cfg.reference_split!r} or 'train' records to compare "
                             f"with; check that the run's data.root is readable from here")
    if len(records) > cfg.max_reference:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(records), cfg.max_reference, replace=False))
        records = [records[i] for i in keep]
    return records


def read_batch(manifest: Path, trained: TrainedRun, *, root: Path | None = None,
               format: str = "auto") -> tuple[list[Record], list[dict[str, str]]]:
    """The new batch's records (labels optional) and what was quarantined while reading it."""
    from framework.data.readers import read_manifest

    manifest = Path(manifest)
    if not manifest.exists():
        raise FrameworkError(f"{manifest}: no such manifest or folder; give the new batch's manifest (JSONL/CSV "
                             f"with a path column) or folder")
    base = Path(root) if root is not None else (manifest if manifest.is_dir() else manifest.parent)
    records, quarantined = read_manifest(manifest, root=base.absolute(), split=MONITOR_SPLIT, format=format,
                                         slices=tuple(trained.ctx.data.slices),
                                         allow_outside_root=trained.ctx.data.allow_outside_root)
    for item in quarantined:
        log.warning("monitor: skipped %s (%s): %s", item.source, item.reason, item.detail)
    if not records:
        raise FrameworkError(f"{manifest}: no usable item in the batch ({len(quarantined)} quarantined)")
    return records, [{"source": q.source, "reason": q.reason, "detail": q.detail} for q in quarantined]


def signals_of(trained: TrainedRun, records: list[Record], split: str) -> tuple[dict[str, Any], Any]:
    """Input features and model signals of ``records``, and the predictions they came from."""
    predictions = trained.modality.predict(trained.ctx, trained.task, records, split)
    features = trained.modality.drift_features(trained.ctx, records)
    signals: dict[str, Any] = {}
    for name, values in features.items():
        if len(values) != len(records):
            raise FrameworkError(f"{trained.modality.name}.drift_features returned {len(values)} values of "
                                 f"{name!r} for {len(records)} records; return one value per record (None if unknown)")
        signals[f"input/{name}"] = list(values)
    signals.update(model_signals(predictions, trained.modality.label_type))
    return signals, predictions


def monitor(run_dir: Path, manifest: Path, *, cfg: DriftConfig | None = None, out_dir: Path | None = None,
            weights: Path | None = None, root: Path | None = None, format: str = "auto",
            plugins: Plugins | None = None) -> DriftReport:
    """Check a new batch for drift against a trained run's reference; write the artifacts.

    Args:
        run_dir: The trained run's directory.
        manifest: The new batch: a manifest (JSONL/CSV; labels optional) or folder.
        cfg: Thresholds and sizes (:class:`DriftConfig` defaults when omitted).
        out_dir: Where to write; default ``run_dir/monitor``.
        weights: An export or checkpoint directory; default the run's export, else newest checkpoint.
        root: What the batch's relative media paths resolve against; default the manifest's folder.
        format: The batch's reader (``auto`` from its extension).
        plugins: The plugin facade; the installed plugins when omitted.

    Returns:
        The drift report (also written as ``drift.json``).
    """
    cfg = cfg or DriftConfig()
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "monitor"
    trained = load_trained(run_dir, out_dir, weights=weights, plugins=plugins)
    batch, quarantined = read_batch(manifest, trained, root=root, format=format)
    reference = reference_records(trained.data, cfg)
    ref_signals, _ = signals_of(trained, reference, "reference")
    new_signals, predictions = signals_of(trained, batch, MONITOR_SPLIT)
    report = compare(ref_signals, new_signals, cfg, reference_size=len(reference), batch_size=len(batch))
    report.quarantined = quarantined
    sample = review_sample(predictions, cfg.review_share, label_type=trained.modality.label_type)
    queue = write_review_queue(sample, predictions, batch, out_dir / "review_tasks.json",
                               label_type=trained.modality.label_type, model_version=run_dir.name,
                               root=root or (Path(manifest) if Path(manifest).is_dir() else Path(manifest).parent))
    report.review = {"size": len(sample.ids), "share": cfg.review_share, "strata": sample.strata,
                     "ids": sample.ids, "path": str(queue)}
    payload = report.to_json()
    atomic_write_text(out_dir / "drift.json", json.dumps(payload, indent=1, allow_nan=False))
    _write_page(out_dir / "report.html", trained, payload, ref_signals, new_signals, run_dir)
    verdict = f"DRIFT in {', '.join(report.drifted)}" if report.drifted else "no drift"
    log.info("monitor: %s (%d signals; batch %d vs reference %d); review sample of %d -> %s", verdict,
             len(report.signals), len(batch), len(reference), len(sample.ids), out_dir)
    return report


def _write_page(path: Path, trained: TrainedRun, payload: dict[str, Any], reference: dict[str, Any],
                batch: dict[str, Any], run_dir: Path) -> Path:
    from framework.evaluation import plots
    from framework.evaluation.html_report import drift_section, esc, page

    figures = {}
    for signal in payload["signals"]:
        if signal["kind"] == "vectors" or len(figures) >= 16:
            continue
        name = signal["name"]
        figures[name] = plots.distributions(reference[name], batch[name], f"{name} ({signal['verdict']})",
                                            categorical=signal["kind"] == "categorical")
    body = [f"<h1>Monitoring report: {esc(trained.modality.name)}</h1>",
            f"<p>Run <code>{esc(run_dir)}</code>, weights <code>{esc(trained.weights)}</code>.</p>",
            drift_section(payload, figures)]
    return atomic_write_text(path, page(f"Monitoring report ({run_dir.name})", body))
