"""Scoring a labelled production batch against the launch evaluation (``python -m framework.monitoring evaluate``).

:func:`evaluate_batch` loads the trained run as the drift monitor does (its ``export/``, else its
newest checkpoint), predicts on the batch, measures the error rates of
:mod:`framework.monitoring.history` with their Wilson intervals, compares them with the run's own
launch figures, appends an ``evaluate`` entry to ``RUN_DIR/monitor/history.jsonl`` and rebuilds
the monitoring report. The caller turns :attr:`BatchEvaluation.alerts` into an exit code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from framework.monitoring import history
from framework.monitoring.history import Alert, Entry, Rate
from framework.plugins import Plugins

log = logging.getLogger(__name__)


@dataclass
class BatchEvaluation:
    """What one evaluation found (also the ``evaluate`` entry appended to the history).

    Attributes:
        entry: The history entry written.
        rates: Metric -> error rate with its interval.
        launch: Metric -> the launch run's error rate.
        alerts: Metrics that degraded past their allowed increase.
        history_path: The ``history.jsonl`` appended to.
    """

    entry: Entry
    rates: dict[str, Rate]
    launch: dict[str, Rate]
    alerts: list[Alert]
    history_path: Path


def evaluate_batch(run_dir: Path, manifest: Path, *, max_increase: Mapping[str, float] | None = None,
                   name: str | None = None, out_dir: Path | None = None, weights: Path | None = None,
                   root: Path | None = None, format: str = "auto", plugins: Plugins | None = None) -> BatchEvaluation:
    """Score a labelled batch with a trained run's model; append the result to the run's history.

    Args:
        run_dir: The trained run's directory (its ``summary.json`` holds the launch figures).
        manifest: The labelled batch: a manifest (JSONL/CSV with labels) or a class-per-folder tree.
        max_increase: Metric -> the largest allowed rise of its error rate over the launch figure
            (:data:`~framework.monitoring.history.DEFAULT_MAX_INCREASE` when omitted).
        name: The batch's name in the history; default its folder or manifest stem.
        out_dir: Where the history and report live; default ``run_dir/monitor``.
        weights: An export or checkpoint directory; default the run's export, else newest checkpoint.
        root: What the batch's relative media paths resolve against; default the manifest's folder.
        format: The batch's reader (``auto`` from its extension).
        plugins: The plugin facade; the installed plugins when omitted.

    Raises:
        FrameworkError: a missing run or batch, a batch without labels, or a threshold on a metric
            that is not measured.
    """
    from framework.monitoring.monitor import MONITOR_SPLIT, load_trained, read_batch
    from framework.monitoring.page import write_monitor_page

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "monitor"
    thresholds = dict(history.DEFAULT_MAX_INCREASE if max_increase is None else max_increase)
    trained = load_trained(run_dir, out_dir, weights=weights, plugins=plugins)
    records, _ = read_batch(manifest, trained, root=root, format=format)
    predictions = trained.modality.predict(trained.ctx, trained.task, records, MONITOR_SPLIT)
    rates = history.error_rates(predictions, trained.modality.label_type)
    split, launch = history.launch_rates(run_dir)
    if not launch:
        log.warning("monitor: %s has no launch error rates (no summary.json with accuracy and count); the batch "
                    "is recorded without a comparison", run_dir)
    changes, alerts = history.compare_with_launch(rates, launch, thresholds)
    entry = Entry(kind="evaluate", batch=name or history.batch_name(manifest), timestamp=history.now_utc(),
                  manifest=str(manifest), weights=str(trained.weights), size=len(records),
                  rates=history.rate_fields(rates), launch_split=split, changes=changes,
                  alerts=[a.line() for a in alerts], max_increase=thresholds)
    path = history.append(out_dir / history.HISTORY_FILE, entry)
    write_monitor_page(out_dir, run_dir, trained.modality.name, trained.weights)
    overall = rates[history.OVERALL]
    base = launch.get(history.OVERALL)
    log.info("monitor: batch %s error rate %.4f [%.4f, %.4f] on %d labelled items%s -> %s", entry.batch,
             overall.rate, overall.low, overall.high, overall.n,
             f" (launch {base.rate:.4f} on {split})" if base else "", path)
    return BatchEvaluation(entry, rates, launch, alerts, path)
