"""Error-rate history: labelled production batches scored against the launch evaluation.

Every check of a trained run appends one JSON object to ``RUN_DIR/monitor/history.jsonl``:
``python -m framework.monitoring evaluate RUN BATCH`` an ``evaluate`` entry (error rates of a
labelled batch, each with a Wilson 95% interval, and their change against the launch run's own
evaluation), ``python -m framework.monitoring RUN BATCH`` a ``drift`` entry (each signal's verdict
and PSI). The monitoring report plots the file over time.

An item is an *error* when the model's output differs from its label (for classes: a wrong
class; for text: a transcript or answer that is not exactly the label). Rates are reported
overall (``error_rate``), per true class (``class/<name>``), per slice (``slice/<field>=<value>``)
and as the worst class (``max_class_error_rate``).

The launch figures come from the run's evaluate stage: ``summary.json`` (``test/accuracy`` and
``test/count``; the first evaluated split's when there is no test split) and ``eval/reports.json``
(per-class recall and support, per-slice accuracy and count) of the same split.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from framework.errors import FrameworkError
from framework.evaluation.types import Predictions

HISTORY_FILE = "history.jsonl"  # in RUN_DIR/monitor/
CONFIDENCE = 0.95  # of every interval
OVERALL = "error_rate"
WORST_CLASS = "max_class_error_rate"
DEFAULT_MAX_INCREASE = {OVERALL: 0.05}  # used when no --max-increase is given


@dataclass
class Rate:
    """An error rate with its Wilson interval.

    Attributes:
        errors: Items the model got wrong.
        n: Items counted.
        rate: ``errors / n``.
        low: Lower end of the :data:`CONFIDENCE` Wilson interval.
        high: Upper end of the interval.
    """

    errors: int
    n: int
    rate: float
    low: float
    high: float

    @classmethod
    def of(cls, errors: int, n: int) -> "Rate":
        """The rate of ``errors`` in ``n`` items, with its Wilson interval (``n`` must be positive)."""
        low, high = wilson_interval(errors, n)
        return cls(int(errors), int(n), errors / n, low, high)


def wilson_interval(errors: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (scipy's ``binomtest``).

    Wilson's interval stays inside ``[0, 1]`` and keeps its coverage for small batches and rates
    near 0, where the normal approximation does not.
    """
    from scipy.stats import binomtest

    if n <= 0:
        raise ValueError(f"an error rate needs at least one item, got n={n}")
    ci = binomtest(int(errors), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _is_error(target: Any, output: Any) -> bool:
    return str(output).strip() != str(target).strip()


def error_rates(predictions: Predictions, label_type: str = "class") -> dict[str, Rate]:
    """Error rates of the labelled items of ``predictions`` (see the module doc for the names).

    Raises:
        FrameworkError: when no item has a label.
    """
    labelled = [i for i, t in enumerate(predictions.targets) if t is not None]
    if not labelled:
        raise FrameworkError(f"the batch has no labelled item ({len(predictions.ids)} read); an evaluation needs "
                             f"labels: give a manifest with a label column, or a class-per-folder layout")
    wrong = {i: _is_error(predictions.targets[i], predictions.outputs[i]) for i in labelled}
    rates = {OVERALL: Rate.of(sum(wrong.values()), len(wrong))}
    groups: dict[str, list[bool]] = {}
    for i in labelled:
        if label_type == "class":
            groups.setdefault(f"class/{predictions.targets[i]}", []).append(wrong[i])
        if predictions.slices:
            for key, value in sorted(predictions.slices[i].items()):
                groups.setdefault(f"slice/{key}={value}", []).append(wrong[i])
    for name in sorted(groups):
        rates[name] = Rate.of(sum(groups[name]), len(groups[name]))
    classes = [r for n, r in rates.items() if n.startswith("class/")]
    if classes:
        rates[WORST_CLASS] = max(classes, key=lambda r: (r.rate, r.n))
    return rates


def launch_rates(run_dir: Path) -> tuple[str | None, dict[str, Rate]]:
    """The launch run's own error rates: ``(split, rates)``, empty when the run was not evaluated.

    The test split is used when the run evaluated one, else the first evaluated split.
    """
    from framework.evaluation.report import load_reports_json

    summary_path = Path(run_dir) / "summary.json"
    if not summary_path.is_file():
        return None, {}
    metrics = json.loads(summary_path.read_text(encoding="utf-8")).get("metrics") or {}
    reports = load_reports_json(run_dir)
    split = "test" if "test/accuracy" in metrics or "test" in reports else next(iter(reports), None)
    prefix = "test/" if split == "test" and "test/accuracy" in metrics else ""
    rates: dict[str, Rate] = {}
    accuracy, count = metrics.get(prefix + "accuracy"), metrics.get(prefix + "count")
    if accuracy is not None and count:
        rates[OVERALL] = Rate.of(round((1 - accuracy) * count), int(count))
    report = reports.get(split) if split else None
    if report is not None:
        for name, row in report.per_class.items():
            if row.get("support") and "recall" in row:
                n = int(row["support"])
                rates[f"class/{name}"] = Rate.of(round((1 - row["recall"]) * n), n)
        for name, row in report.per_slice.items():
            if row.get("count") and "accuracy" in row:
                n = int(row["count"])
                rates[f"slice/{name}"] = Rate.of(round((1 - row["accuracy"]) * n), n)
        classes = [r for n, r in rates.items() if n.startswith("class/")]
        if classes:
            rates[WORST_CLASS] = max(classes, key=lambda r: (r.rate, r.n))
    return split, rates


def parse_max_increase(items: Iterable[str]) -> dict[str, float]:
    """``["error_rate=0.05", "class/cat=0.1"]`` -> ``{"error_rate": 0.05, "class/cat": 0.1}``.

    Raises:
        FrameworkError: for an item that is not ``NAME=NUMBER`` with a number in ``[0, 1]``.
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).rpartition("=")  # a slice name keeps its own "="
        name = name.strip()
        try:
            number = float(value) if sep and name else math.nan
        except ValueError:
            number = math.nan
        if not 0.0 <= number <= 1.0:
            raise FrameworkError(f"--max-increase {item!r}: expected METRIC=INCREASE with INCREASE between 0 and 1, "
                                 f"e.g. error_rate=0.05 or class/cat=0.1")
        out[name] = number
    return out


@dataclass
class Alert:
    """A metric whose error rate rose past its allowed increase over the launch figure."""

    metric: str
    launch: float
    now: float
    max_increase: float

    def line(self) -> str:
        """One line for the terminal and the log."""
        return (f"{self.metric} rose from {self.launch:.4f} at launch to {self.now:.4f} "
                f"(+{self.now - self.launch:.4f}, allowed +{self.max_increase:g})")


def compare_with_launch(rates: Mapping[str, Rate], launch: Mapping[str, Rate],
                        max_increase: Mapping[str, float]) -> tuple[dict[str, dict[str, Any]], list[Alert]]:
    """Each rate against its launch figure, and the alerts ``max_increase`` raises.

    Returns:
        ``metric -> {"launch", "launch_low", "launch_high", "change", "beyond_noise"}`` for every
        metric both sides have (``beyond_noise``: the two intervals do not overlap), and one
        :class:`Alert` per metric of ``max_increase`` whose rate rose by more than allowed.

    Raises:
        FrameworkError: when a metric of ``max_increase`` is neither measured nor known at launch.
    """
    changes: dict[str, dict[str, Any]] = {}
    for name, now in rates.items():
        then = launch.get(name)
        if then is None:
            continue
        changes[name] = {"launch": then.rate, "launch_low": then.low, "launch_high": then.high,
                         "change": now.rate - then.rate, "beyond_noise": now.low > then.high or now.high < then.low}
    alerts = []
    for name, allowed in max_increase.items():
        if name not in rates and name not in launch:
            known = ", ".join(sorted(set(rates) | set(launch)))
            raise FrameworkError(f"--max-increase names {name!r}, which is not measured; known metrics: {known}")
        if name in changes and changes[name]["change"] > allowed:
            alerts.append(Alert(name, launch[name].rate, rates[name].rate, allowed))
    return changes, alerts


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-12-02T19:20:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    """One line of ``history.jsonl``.

    Attributes:
        kind: ``evaluate`` (error rates) or ``drift`` (signal verdicts).
        batch: The batch's name (its manifest's stem or folder name unless given).
        timestamp: When the check ran, UTC ISO 8601.
        manifest: The batch's path as given.
        weights: The weights that scored it (``export/`` or a checkpoint).
        size: Items in the batch.
        rates: ``evaluate``: metric -> :class:`Rate` fields.
        launch_split: ``evaluate``: the launch evaluation's split compared with.
        changes: ``evaluate``: metric -> launch figure, change and whether it is beyond noise.
        alerts: ``evaluate``: one line per metric that degraded past its threshold.
        max_increase: ``evaluate``: the thresholds checked.
        signals: ``drift``: signal -> ``{"verdict", "psi", "p_value"}``.
        drifted: ``drift``: the signals whose verdict is ``drift``.
    """

    kind: str
    batch: str
    timestamp: str
    manifest: str
    weights: str
    size: int
    rates: dict[str, dict[str, Any]] = field(default_factory=dict)
    launch_split: str | None = None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    max_increase: dict[str, float] = field(default_factory=dict)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    drifted: list[str] = field(default_factory=list)


def batch_name(manifest: Path) -> str:
    """A batch's default name: its folder's name, or its manifest's file name without suffix."""
    manifest = Path(manifest)
    return manifest.name if manifest.is_dir() else manifest.stem


def append(path: Path, entry: Entry) -> Path:
    """Append ``entry`` as one JSON line to ``path`` (created with its folder); returns ``path``.

    One ``write`` of one line in append mode, flushed and synced, so concurrent checks interleave
    whole lines.
    """
    import os

    from framework.json_values import jsonable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(jsonable(asdict(entry)), allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def read(path: Path) -> list[Entry]:
    """Every entry of a ``history.jsonl`` in file order (empty when there is none).

    Raises:
        FrameworkError: naming ``file:line`` for a line that is not a history entry.
    """
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(Entry(**json.loads(line)))
        except (ValueError, TypeError) as err:
            raise FrameworkError(f"{path}:{number}: not a monitoring history entry ({err}); remove or fix "
                                 f"the line") from None
    return entries


def rate_fields(rates: Mapping[str, Rate]) -> dict[str, dict[str, Any]]:
    """Rates as the plain dicts an :class:`Entry` stores."""
    return {name: asdict(rate) for name, rate in rates.items()}


def series(entries: Sequence[Entry], metric: str) -> list[tuple[int, Entry, dict[str, Any]]]:
    """``(index in entries, entry, rate fields)`` of every ``evaluate`` entry that measured ``metric``."""
    return [(i, e, e.rates[metric]) for i, e in enumerate(entries) if e.kind == "evaluate" and metric in e.rates]
