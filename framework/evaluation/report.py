"""``report.md``: the evaluate stage's verdict, written for a person deciding whether to ship.

Also ``eval/reports.json``, every split's :class:`EvalReport` as data, which ``--compare`` reads to
set a run against a baseline per class. ``report.html`` is :mod:`framework.evaluation.html_report`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from framework.evaluation import success
from framework.evaluation.types import EvalReport
from framework.json_values import jsonable

if TYPE_CHECKING:
    from framework.evaluation.retention import Retention

REPORTS_JSON = "eval/reports.json"


def _fmt(value: float) -> str:
    """Counts as integers, everything else to four decimals."""
    return str(int(value)) if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"


def _table(rows: Mapping[str, Mapping[str, float]], first: str) -> str:
    columns = sorted({c for row in rows.values() for c in row})
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = " | ".join("" if c not in row else _fmt(row[c]) for c in columns)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def _metrics_table(metrics: Mapping[str, float]) -> str:
    """Overall metrics, one per row; namespaced ones (``robust/...``) have their own sections."""
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {_fmt(value)} |" for name, value in metrics.items() if "/" not in name]
    return "\n".join(lines)


def render(modality: str, reports: Sequence[EvalReport], verdicts: Sequence[success.Verdict],
           run_dir: Path, audit_line: str | None = None, retention: "Retention | None" = None,
           weights: str = "") -> str:
    """The Markdown text of ``report.md``; ``weights`` says which weights were evaluated
    (``RunResult.weights``)."""
    out = [f"# Evaluation report: {modality}", ""]
    if weights:
        out += [f"Weights evaluated: **{weights}**", ""]
    if verdicts:
        fit = all(v.passed for v in verdicts)
        out += [f"**Fit to ship: {'yes' if fit else 'no'}** "
                f"({sum(v.passed for v in verdicts)} of {len(verdicts)} success criteria met)", "",
                success.table(list(verdicts)), ""]
    else:
        out += ["No success criteria were set (`success:` in the config), so no verdict is given.", ""]
    if audit_line:
        out += [f"Data audit: {audit_line}", ""]
    for report in reports:
        out += [f"## Split `{report.split}`", "", _metrics_table(report.metrics), ""]
        if report.notes:
            out += [f"- {note}" for note in report.notes] + [""]
        for title, rows, first in (("Per class", report.per_class, "class"),
                                   ("Per slice", report.per_slice, "slice"),
                                   ("Robustness", report.robustness, "condition")):
            if rows:
                out += [f"### {title}", "", _table(rows, first), ""]
        for heading, body in report.sections.items():
            out += [f"### {heading}", "", body.strip(), ""]
        for artifact in report.artifacts:
            rel = Path(artifact)
            rel = rel.relative_to(run_dir) if rel.is_absolute() and rel.is_relative_to(run_dir) else rel
            out += [f"![{rel.name}]({rel.as_posix()})" if rel.suffix == ".png" else f"- [{rel.name}]({rel.as_posix()})"]
        out.append("")
    if retention is not None:
        out += ["## Retention (forgetting)", "", retention.markdown(), ""]
    return "\n".join(out).rstrip() + "\n"


def write_reports_json(reports: Sequence[EvalReport], path: Path) -> Path:
    """Write every split's report as ``{"splits": [EvalReport fields...]}`` (strict JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"splits": [jsonable(asdict(report)) for report in reports]}
    from framework.atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(payload, indent=1, allow_nan=False))


def load_reports_json(run_dir: Path) -> dict[str, EvalReport]:
    """The reports a run's evaluate stage wrote, by split (empty when it wrote none)."""
    path = Path(run_dir) / REPORTS_JSON
    if not path.is_file():
        return {}
    out = {}
    for row in json.loads(path.read_text(encoding="utf-8")).get("splits", []):
        nan = float("nan")
        clean = {k: (v if k not in ("metrics",) else {m: nan if x is None else x for m, x in v.items()})
                 for k, v in row.items()}
        clean["artifacts"] = [Path(a) for a in clean.get("artifacts", [])]
        out[row["split"]] = EvalReport(**clean)
    return out
