"""Forgetting: what a fine-tune cost on a retention set, measured before and after training.

``evaluation.retention`` names a manifest or folder (under ``data.root``) of what the model must
keep doing well: the original classes, the original language's speech, general prompts. The
evaluate stage scores it twice with the modality's own ``evaluate``: with the starting weights
(before the first training step, after ``checkpoint=PATH`` is loaded when fine-tuning from one)
and with the trained weights. The run's metrics then hold, for every plain metric ``m`` of the
retention report:

* ``retention/m`` (trained weights) and ``retention/start/m`` (starting weights);
* ``retention/m_drop``: how much worse the trained weights are, ``start - trained`` for metrics
  where higher is better and ``trained - start`` for losses and error rates. A positive drop is
  forgetting; ``success: {retention/accuracy_drop: "<=0.02"}`` bounds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError
from framework.evaluation.direction import lower_is_better
from framework.evaluation.types import EvalReport
from framework.wording import plural

if TYPE_CHECKING:
    from framework.config import EvaluationConfig
    from framework.data.config import DataConfig

SPLIT = "retention"  # the split name the retention records get in the run's DataBundle
START_SPLIT = "retention_start"  # the same records, scored with the starting weights
PREFIX = "retention/"

log = logging.getLogger(__name__)


@dataclass
class Retention:
    """The retention set's reports with the starting and the trained weights.

    Attributes:
        source: The manifest or folder the records came from.
        start: The report with the starting weights (``None`` when the run did not train, so
            there were no starting weights to measure).
        trained: The report with the trained weights, once measured.
    """

    source: Path
    start: EvalReport | None = None
    trained: EvalReport | None = None
    records: list[Record] = field(default_factory=list, repr=False)

    def cost(self) -> dict[str, float]:
        """Metric -> how much worse the trained weights are than the starting ones (plain metrics)."""
        if self.start is None or self.trained is None:
            return {}
        out = {}
        for name, after in self.trained.metrics.items():
            before = self.start.metrics.get(name)
            if "/" in name or before is None or name == "count":
                continue
            out[name] = after - before if lower_is_better(name) else before - after
        return out

    def metrics(self) -> dict[str, float]:
        """``retention/m``, ``retention/start/m`` and ``retention/m_drop`` for every plain metric."""
        out: dict[str, float] = {}
        if self.trained is not None:
            out.update({PREFIX + k: v for k, v in self.trained.metrics.items() if "/" not in k})
        if self.start is not None:
            out.update({f"{PREFIX}start/{k}": v for k, v in self.start.metrics.items() if "/" not in k})
        out.update({f"{PREFIX}{k}_drop": v for k, v in self.cost().items()})
        return out

    def markdown(self) -> str:
        """A table: metric, starting weights, trained weights, cost (positive = forgotten)."""
        lines = [f"Retention set: `{self.source}` ({plural(len(self.records), 'item')}). A positive cost is forgetting.", ""]
        if self.start is None:
            lines += ["The run did not train, so the starting weights were not measured.", ""]
        lines += ["| metric | starting weights | trained weights | cost |", "|---|---|---|---|"]
        cost = self.cost()
        trained = self.trained.metrics if self.trained else {}
        start = self.start.metrics if self.start else {}
        for name in [k for k in trained if "/" not in k]:
            cells = [_num(start.get(name)), _num(trained.get(name)),
                     "" if name not in cost else f"{cost[name]:+.4f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"


def load_retention(evaluation: "EvaluationConfig", data: DataBundle, data_cfg: "DataConfig") -> Retention | None:
    """Read ``evaluation.retention`` into ``data`` as the :data:`SPLIT` and :data:`START_SPLIT` splits.

    A relative path resolves against ``data.root``; a set outside it resolves its media paths
    against its own folder.

    Args:
        evaluation: The ``evaluation:`` config node.
        data: The run's bundle; its ``root`` resolves a relative ``evaluation.retention``.
        data_cfg: The ``data:`` node (slices and ``allow_outside_root`` apply to the set too).

    Returns:
        ``None`` when no retention set is configured.

    Raises:
        FrameworkError: when the set has no labeled item to score.
    """
    from framework.data.readers import read_manifest

    if not evaluation.retention:
        return None
    source = Path(evaluation.retention)
    source = source if source.is_absolute() else Path(data.root) / source
    # A set outside data.root (the original task's data) resolves its media against its own folder.
    root = Path(data.root) if source.absolute().is_relative_to(Path(data.root).absolute()) else \
        (source if source.is_dir() else source.parent)
    records, quarantined = read_manifest(source, root=root, split=SPLIT, format=evaluation.retention_format,
                                         slices=tuple(data_cfg.slices), allow_outside_root=data_cfg.allow_outside_root)
    for item in quarantined:
        log.warning("retention set: skipped %s (%s): %s", item.source, item.reason, item.detail)
    unlabeled = sum(r.label is None for r in records)
    if unlabeled:
        log.warning("retention set: %d unlabeled item(s) in %s are not scored", unlabeled, source)
    records = [r for r in records if r.label is not None]
    if not records:
        raise FrameworkError(f"evaluation.retention={evaluation.retention!r}: {source} has no labeled items "
                             f"({len(quarantined)} quarantined); point it at a labeled manifest or folder")
    data.splits[SPLIT] = records
    data.splits[START_SPLIT] = records
    return Retention(source=source, records=records)
