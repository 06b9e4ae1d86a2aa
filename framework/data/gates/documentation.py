"""Documentation gate: the fields the data card needs are present when config requires them.

Sources and the guidelines version come from the data's own card (``datacard.yaml`` or
``DATASET.md`` in the data root, :mod:`framework.data.dataset_card`) and from ``data.sources`` /
``data.guidelines_version``. The data card itself (``audit/datacard.md``) is written by
:func:`framework.data.audit.run_audit` after every check has run, since it records every result.
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


def _fix(key: str, fix: str, root: str) -> str:
    if not root:
        return f"set {fix}"
    example = "sources: [\"where the data came from\"]" if key == "sources" else "guidelines_version: v1.2"
    return f"add {root}/datacard.yaml with '{example}' (or set {fix})"


class DocumentationGate:
    """Fails only when a field required by ``data.gates.documentation`` is empty.

    Args:
        documented: The documentation fields (``guidelines_version``, ``sources``) from the data's
            card and the data config, passed in because a check reads the bundle, not the config;
            ``root`` and ``card`` (the card's path) make the fix in the message concrete.
    """

    name = "documentation"

    def __init__(self, documented: dict[str, Any]) -> None:
        self.documented = documented

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Check required fields."""
        s = gate_settings(self.name, ctx.settings)
        missing = [(flag, fix) for flag, (key, fix) in REQUIREMENTS.items() if s[flag] and not self.documented.get(key)]
        present = {key: bool(self.documented.get(key)) for key, _ in REQUIREMENTS.values()}
        root = str(self.documented.get("root") or "")
        if missing:
            where = f" for the data in {root}" if root else ""
            summary = f"missing required documentation{where}: " + "; ".join(
                f"no {REQUIREMENTS[f][0].replace('_', ' ')}: {_fix(REQUIREMENTS[f][0], fix, root)}" for f, fix in missing)
        else:
            summary = "required documentation present: " + (", ".join(k for k, v in present.items() if v) or "none required")
        measured = {"present": present, "card": self.documented.get("card")}
        return CheckResult(self.name, not missing, summary=summary, measured=measured,
                           override=override(self.name, *[flag + "=false" for flag, _ in missing]))
