"""Deprecated: renamed :mod:`framework.monitoring.review_sample` (this path is removed in the next release)."""

from framework._moved import alias_module

alias_module(__name__, "framework.monitoring.review_sample")
