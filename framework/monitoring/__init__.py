"""Monitoring a trained model: drift of new inputs against the training reference, review sampling.

``python -m framework.monitoring RUN_DIR NEW_MANIFEST`` (see :mod:`framework.monitoring.__main__`)
or :func:`monitor` from a script. The statistics are in :mod:`~framework.monitoring.stats`, the
verdicts in :mod:`~framework.monitoring.drift`, the review sample in
:mod:`~framework.monitoring.review_sample`.
"""

from framework.monitoring.drift import DriftConfig, DriftReport, SignalResult, compare, model_signals
from framework.monitoring.monitor import load_trained, monitor
from framework.monitoring.review_sample import ReviewSample, review_sample, write_review_queue

__all__ = ["DriftConfig", "DriftReport", "ReviewSample", "SignalResult", "compare", "load_trained", "model_signals",
           "monitor", "review_sample", "write_review_queue"]
