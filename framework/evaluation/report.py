"""``report.md``: the evaluate stage's verdict, written for a person deciding whether to ship."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from framework.evaluation import success
from framework.evaluation.types import EvalReport


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
           run_dir: Path, audit_line: str | None = None) -> str:
    """The Markdown text of ``report.md``."""
    out = [f"# Evaluation report: {modality}", ""]
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
    return "\n".join(out).rstrip() + "\n"
