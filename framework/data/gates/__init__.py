"""The core audit gates, one module each; :func:`core_checks` builds them for a run."""

from __future__ import annotations

from typing import Any

from framework.data.checks import QualityCheck
from framework.data.gates.accuracy import AccuracyGate
from framework.data.gates.balance import BalanceGate
from framework.data.gates.cleanliness import CleanlinessGate
from framework.data.gates.consistency import ConsistencyGate
from framework.data.gates.coverage import CoverageGate
from framework.data.gates.documentation import DocumentationGate
from framework.data.gates.label_issues import LabelIssuesCheck

CORE_GATES = ("coverage", "consistency", "accuracy", "cleanliness", "balance", "documentation")


def core_checks(documented: dict[str, Any]) -> list[QualityCheck]:
    """The six gates plus the label-issue warning, in audit order (documentation last)."""
    return [CoverageGate(), ConsistencyGate(), AccuracyGate(), CleanlinessGate(), BalanceGate(),
            LabelIssuesCheck(), DocumentationGate(documented)]


__all__ = ["AccuracyGate", "BalanceGate", "CORE_GATES", "CleanlinessGate", "ConsistencyGate", "CoverageGate",
           "DocumentationGate", "LabelIssuesCheck", "core_checks"]
