"""Helpers shared by the core gates: settings with defaults, and plain-language summaries."""

from __future__ import annotations

from typing import Any, Mapping

from framework.data.checks import check_settings
from framework.data.config import GATE_DEFAULTS


def plain(value: Any) -> Any:
    """An OmegaConf node as plain Python containers (other values unchanged)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # omegaconf is only needed when Hydra built the config
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def gate_settings(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The gate's defaults overlaid with ``given``.

    Raises:
        SettingsError: for a key the gate does not read, naming the valid keys.
    """
    return check_settings(f"data.gates.{name}", plain(given), GATE_DEFAULTS[name])


def override(name: str, *keys: str) -> str:
    """The overrides that relax gate ``name``, for CheckResult.override and error messages."""
    relax = " or ".join(f"data.gates.{name}.{k}" + ("" if "=" in k else "=...") for k in keys)
    return f"{relax} (or data.gates.enforce=false to report without stopping)" if relax else "data.gates.enforce=false"


def at_most(what: str, value: float, limit: float, fmt: str = "{:.3g}") -> tuple[bool, str]:
    """``(passed, text)`` for a ``value <= limit`` check, saying by how much it missed."""
    v, lim = fmt.format(value), fmt.format(limit)
    if value <= limit:
        return True, f"{what} {v} <= {lim}"
    return False, f"{what} {v} > {lim} (over by {fmt.format(value - limit)})"


def at_least(what: str, value: float, limit: float, fmt: str = "{:.3g}") -> tuple[bool, str]:
    """``(passed, text)`` for a ``value >= limit`` check, saying by how much it missed."""
    v, lim = fmt.format(value), fmt.format(limit)
    if value >= limit:
        return True, f"{what} {v} >= {lim}"
    return False, f"{what} {v} < {lim} (short by {fmt.format(limit - value)})"
