"""Deprecated name of :mod:`framework.training.metric_logger` (kept for one release).

Renamed so it is not confused with :mod:`framework.monitoring.monitor` (drift monitoring).
"""

from __future__ import annotations

import warnings

from framework.training.metric_logger import EarlyStopper, MetricsFile, MetricWindow, OverfitWatch

warnings.warn(
    "framework.training.monitor is deprecated; import from framework.training.metric_logger instead",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["EarlyStopper", "MetricWindow", "MetricsFile", "OverfitWatch"]
