"""Deprecated: renamed :mod:`framework.annotation.review_tasks` (this path is removed in the next release)."""

from framework._moved import alias_module

alias_module(__name__, "framework.annotation.review_tasks")
