"""Documentation gate: the fields the data card needs are present when config requires them.

The data card itself (``audit/datacard.md``) is written by :func:`framework.data.audit.run_audit`
after every check has run, since it records every result.
"""

from __future__ import annotations

from typing import Any

from framework.data.checks import CheckContext, CheckResult
from framework.data.gates._base import gate_settings, override
from framework.data.records import DataBundle

# required-flag -> (DataConfig field, what to set)
REQUIREMENTS = {
    "require_guidelines_version": ("guidelines_version", "data.guidelines_version=v1.2"),
    "require_sources": ("sources", "data.sources=['where the data came from']"),
}


class DocumentationGate:
    """Fails only when a field required by ``data.gates.documentation`` is empty.

    Args:
        documented: The documentation fields from the data config (``guidelines_version``,
            ``sources``), passed in because a check reads the bundle, not the config.
    """

    name = "documentation"

    def __init__(self, documented: dict[str, Any]) -> None:
        self.documented = documented

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Check required fields."""
        s = gate_settings(self.name, ctx.settings)
        missing = [(flag, fix) for flag, (key, fix) in REQUIREMENTS.items() if s[flag] and not self.documented.get(key)]
        present = {key: bool(self.documented.get(key)) for key, _ in REQUIREMENTS.values()}
        if missing:
            summary = "missing required documentation: " + "; ".join(f"{f.removeprefix('require_')} (set {fix})" for f, fix in missing)
        else:
            summary = "required documentation present: " + (", ".join(k for k, v in present.items() if v) or "none required")
        return CheckResult(self.name, not missing, summary=summary, measured={"present": present},
                           override=override(self.name, *[flag + "=false" for flag, _ in missing]))
