"""Deprecated: renamed :mod:`framework.data.audit_card` (this path is removed in the next release)."""

from framework._moved import alias_module

alias_module(__name__, "framework.data.audit_card")
