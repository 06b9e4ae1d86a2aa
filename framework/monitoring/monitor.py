"""Watching a trained model after export: a new batch against the training reference.

:func:`monitor` loads a trained run (its export, else its newest checkpoint, with the resolved
config stored beside the weights), reads the new batch (a manifest or folder the run's modality
reads), predicts on it and on the reference split, and compares the two on the modality's input
features (:meth:`framework.Modality.drift_features`) and the model's own signals. It writes, into
``RUN_DIR/monitor/`` unless told otherwise:

* ``drift.json``: one verdict per signal (PSI, KS / chi-square / MMD), the sizes compared and
  the review sample's strata;
* ``drift_figures/``: one reference-against-batch plot per signal;
* ``history.jsonl``: one ``drift`` entry appended (:mod:`framework.monitoring.history`);
* ``report.html``: the monitoring report (:mod:`framework.monitoring.page`): the history over
  time and this drift check;
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
from framework.monitoring import history
from framework.monitoring.drift import DriftConfig, DriftReport, compare, model_signals
from framework.monitoring.page import DRIFT_FIGURES, figure_path, write_monitor_page
from framework.monitoring.review_sample import review_sample, write_review_queue
from framework.plugins import Plugins
from framework.wording import plural

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
    """The weights a run serves: ``export/`` when it holds the task's weights with the config
    (``model.safetensors``, ``config.yaml``), else the newest valid checkpoint.

    An ``export/`` in another format (a merged Hugging Face model, say) is named in a warning
    before the checkpoint is used, so the fallback is never silent.
    """
    from framework.training import latest_checkpoint
    from framework.training.checkpoint import CONFIG, WEIGHTS

    export = Path(run_dir) / "export"
    missing = [name for name in (WEIGHTS, CONFIG) if not (export / name).is_file()]
    if export.is_dir() and not missing:
        return export
    checkpoint = latest_checkpoint(Path(run_dir))
    if checkpoint is None:
        raise FrameworkError(f"{run_dir} has neither export/ (with {WEIGHTS} and {CONFIG}) nor a valid checkpoint; "
                             f"pass a trained run's directory, or --weights PATH to an export or checkpoint directory")
    if export.is_dir():
        log.warning("monitor: %s has no %s (the modality exports another format); scoring with the newest "
                    "checkpoint %s instead", export, " or ".join(missing), checkpoint)
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
            plugins: Plugins | None = None, name: str | None = None) -> DriftReport:
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
        name: The batch's name in ``history.jsonl``; default its folder or manifest stem.

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
    _write_figures(out_dir, payload, ref_signals, new_signals)
    history.append(out_dir / history.HISTORY_FILE, drift_entry(report, manifest, trained.weights, name))
    write_monitor_page(out_dir, run_dir, trained.modality.name, trained.weights)
    verdict = f"DRIFT in {', '.join(report.drifted)}" if report.drifted else "no drift"
    log.info("monitor: %s (%d signals; batch %d vs reference %d); review sample of %s -> %s", verdict,
             len(report.signals), len(batch), len(reference), plural(len(sample.ids), "item"), out_dir)
    return report


def drift_entry(report: DriftReport, manifest: Path, weights: Path, name: str | None = None) -> history.Entry:
    """The ``drift`` line of ``history.jsonl`` for a drift report."""
    signals = {s.name: {"verdict": s.verdict, "psi": s.psi, "p_value": s.p_value} for s in report.signals}
    return history.Entry(kind="drift", batch=name or history.batch_name(manifest), timestamp=history.now_utc(),
                         manifest=str(manifest), weights=str(weights), size=report.batch_size, signals=signals,
                         drifted=report.drifted)


def _write_figures(out_dir: Path, payload: dict[str, Any], reference: dict[str, Any], batch: dict[str, Any]) -> None:
    """One reference-against-batch plot per scalar or categorical signal (at most 16), replacing the last check's."""
    import shutil

    from framework.evaluation import plots

    shutil.rmtree(out_dir / DRIFT_FIGURES, ignore_errors=True)
    drawn = 0
    for signal in payload["signals"]:
        if signal["kind"] == "vectors" or drawn >= 16:
            continue
        name = signal["name"]
        uri = plots.distributions(reference[name], batch[name], f"{name} ({signal['verdict']})",
                                  categorical=signal["kind"] == "categorical")
        plots.write_png(uri, figure_path(out_dir, name))
        drawn += 1
