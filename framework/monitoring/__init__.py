"""Monitoring a trained model: drift of new inputs against the training reference, review sampling.

``python -m framework.monitoring RUN_DIR NEW_MANIFEST`` (see :mod:`framework.monitoring.__main__`)
or :func:`monitor` from a script; ``python -m framework.monitoring evaluate RUN_DIR LABELLED_BATCH``
(:func:`evaluate_batch`) scores a labelled batch into the error-rate history
(:mod:`~framework.monitoring.history`). The statistics are in :mod:`~framework.monitoring.stats`, the
verdicts in :mod:`~framework.monitoring.drift`, the review sample in
:mod:`~framework.monitoring.review_sample`.
"""

from framework.monitoring.drift import DriftConfig, DriftReport, SignalResult, compare, model_signals
from framework.monitoring.evaluate import BatchEvaluation, evaluate_batch
from framework.monitoring.history import Alert, Entry, Rate, error_rates, launch_rates, wilson_interval
from framework.monitoring.monitor import load_trained, monitor
from framework.monitoring.review_sample import ReviewSample, review_sample, write_review_queue

__all__ = ["Alert", "BatchEvaluation", "DriftConfig", "DriftReport", "Entry", "Rate", "ReviewSample", "SignalResult",
           "compare", "error_rates", "evaluate_batch", "launch_rates", "load_trained", "model_signals", "monitor",
           "review_sample", "wilson_interval", "write_review_queue"]
