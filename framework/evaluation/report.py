"""``report.md``: the evaluate stage's verdict, written for a person deciding whether to ship.

Also ``eval/reports.json``, every split's :class:`EvalReport` as data, which ``--compare`` reads to
set a run against a baseline per class. ``report.html`` is :mod:`framework.evaluation.html_report`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from framework.evaluation import success
from framework.evaluation.types import EvalReport
from framework.json_values import jsonable
from framework.wording import number

if TYPE_CHECKING:
    from framework.evaluation.benchmarks import Benchmarks
    from framework.evaluation.retention import Retention

REPORTS_JSON = "eval/reports.json"


def _table(rows: Mapping[str, Mapping[str, float]], first: str) -> str:
    columns = sorted({c for row in rows.values() for c in row})
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = " | ".join("" if c not in row else number(row[c], c) for c in columns)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def _metrics_table(metrics: Mapping[str, float]) -> str:
    """Overall metrics, one per row; namespaced ones (``robust/...``) have their own sections."""
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {number(value, name)} |" for name, value in metrics.items() if "/" not in name]
    return "\n".join(lines)


def render(modality: str, reports: Sequence[EvalReport], verdicts: Sequence[success.Verdict],
           run_dir: Path, audit_line: str | None = None, retention: "Retention | None" = None,
           benchmarks: "Benchmarks | None" = None, sources: Mapping[str, Path] | None = None,
           merged: Mapping[str, Any] | None = None, weights: str = "") -> str:
    """The Markdown text of ``report.md``; ``sources`` names the extra sets' reports (by split)
    and where each set came from; ``merged`` is the training split's
    :func:`framework.data.provenance.merged_summary`, shown when given; ``weights`` says which
    weights were evaluated (``RunResult.weights``)."""
    sources = sources or {}
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
    if merged:
        from framework.data.provenance import summary_markdown

        out += summary_markdown(merged)
    for report in reports:
        if report.split in sources:
            out += [f"## Set `{report.split}`", "", f"From `{sources[report.split]}`; metrics reported as "
                    f"`{report.split}/<metric>`.", ""]
        else:
            out += [f"## Split `{report.split}`", ""]
        out += [_metrics_table(report.metrics), ""]
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
    if benchmarks is not None and benchmarks.trained is not None:
        out += ["## Benchmarks (lm-evaluation-harness)", "", benchmarks.markdown(), ""]
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


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's config: Hydra's ``.hydra/config.yaml``, else the one beside its export or newest
    checkpoint (empty when none is found)."""
    import yaml

    from framework.training import latest_checkpoint

    candidates = [run_dir / ".hydra" / "config.yaml", run_dir / "export" / "config.yaml"]
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        candidates.append(checkpoint / "config.yaml")
    for path in candidates:
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {}
