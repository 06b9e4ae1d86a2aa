"""Multirun sweeps: the objective each job returns and the summary table at the sweep root.

Every job writes ``summary.json`` (status, overrides, metrics, verdict) into its own dir. When the
sweep ends, :class:`SweepSummary` (a Hydra callback, enabled in ``conf/hydra/default.yaml``)
collects them into ``summary.csv``, ``summary.md`` and ``summary.html`` at the sweep root, best
job first, each with its verdict against ``success:``; ``summary.html`` links every job's
``report.html``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from framework.evaluation.success import parse_criteria

log = logging.getLogger(__name__)


def ranking(cfg: DictConfig) -> tuple[str, bool]:
    """The metric that ranks jobs and whether higher is better.

    ``sweep.metric``/``sweep.mode`` when set; else the first success criterion; else ``val_loss``.
    """
    sweep = cfg.get("sweep") or {}
    criteria = parse_criteria(cfg.get("success") or {})
    metric = sweep.get("metric") or (criteria[0].metric if criteria else "val_loss")
    mode = sweep.get("mode")
    if mode is None:
        matching = [c for c in criteria if c.metric == metric]
        higher = matching[0].higher_is_better if matching else not metric.endswith(("loss", "wer", "cer"))
    else:
        higher = mode == "max"
    return metric, higher


def objective(cfg: DictConfig, metrics: Mapping[str, float]) -> float | None:
    """The value an optimising sweeper (Optuna) sees for this job, or None if not measured."""
    metric, _ = ranking(cfg)
    value = metrics.get(metric)
    return None if value is None else float(value)


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job's ``summary.json`` under ``sweep_dir``, with its job dir name."""
    rows = []
    for path in sorted(sweep_dir.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        rows.append({"job": path.parent.name, **summary})
    return rows


def verdict(row: Mapping[str, Any]) -> str:
    """A job's verdict: ``fit``, ``not fit`` (``not fit (not enforced)``), ``no criteria``, or its
    status when it did not finish (``failed``, ``refused``, ``interrupted``)."""
    if row.get("status") != "completed":
        return str(row.get("status"))
    fit = row.get("fit_to_ship")
    if fit is None:
        return "no criteria"
    return "fit" if fit else "not fit" + ("" if row.get("enforce_success", True) else " (not enforced)")


def write_summary(sweep_dir: Path, metric: str, higher_is_better: bool) -> tuple[Path, Path]:
    """Write ``summary.csv``, ``summary.md`` and ``summary.html`` at ``sweep_dir``, best first;
    return the paths of the first two."""
    rows = collect(sweep_dir)

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row["metrics"].get(metric)
        if value is None or math.isnan(value):
            return (1, 0.0)  # unmeasured jobs (failed, refused) go last
        return (0, -value if higher_is_better else value)

    rows.sort(key=key)
    # Overrides every job shares (the modality, fixed settings) are stated once, not per row.
    common = set.intersection(*(set(row["overrides"]) for row in rows)) if len(rows) > 1 else set()
    metric_names = sorted({m for row in rows for m in row["metrics"]}, key=lambda m: (m != metric, m))
    header = ["rank", "job", "status", "verdict", "overrides", *metric_names]
    table = [[str(i + 1), row["job"], row["status"], verdict(row),
              " ".join(o for o in row["overrides"] if o not in common),
              *[_fmt(row["metrics"].get(m)) for m in metric_names]] for i, row in enumerate(rows)]
    csv_path, md_path = sweep_dir / "summary.csv", sweep_dir / "summary.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(table)
    direction = "higher" if higher_is_better else "lower"
    shared = " ".join(o for o in rows[0]["overrides"] if o in common) if rows else ""
    lines = [f"# Sweep summary: {len(rows)} jobs, ranked by `{metric}` ({direction} is better)", "",
             *([f"Every job: `{shared}`", ""] if shared else []),
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in table]
    md_path.write_text("\n".join(lines) + "\n")
    _write_html(sweep_dir, rows, header, table, metric, direction, shared)
    return csv_path, md_path


def _write_html(sweep_dir: Path, rows: list[dict[str, Any]], header: list[str], table: list[list[str]],
                metric: str, direction: str, shared: str) -> Path:
    """``summary.html``: the ranked table, each job linked to its ``report.html``."""
    from framework.evaluation.html_report import Markup, esc, page
    from framework.evaluation.html_report import table as html_table

    body_rows: list[list[Any]] = []
    for row, cells in zip(rows, table):
        report = sweep_dir / row["job"] / "report.html"
        job = Markup(f'<a href="{esc(row["job"])}/report.html">{esc(row["job"])}</a>') if report.is_file() else row["job"]
        body_rows.append([cells[0], job, *cells[2:]])
    classes = ["pass" if verdict(r) == "fit" else "fail" if verdict(r).startswith("not fit") else "" for r in rows]
    fit = sum(verdict(r) == "fit" for r in rows)
    body = [f"<h1>Sweep summary: {len(rows)} jobs</h1>",
            f"<p>Ranked by <code>{esc(metric)}</code> ({esc(direction)} is better), best first; "
            f"{fit} of {len(rows)} jobs fit to ship. Each job's name links to its report.</p>",
            *([f"<p>Every job: <code>{esc(shared)}</code></p>"] if shared else []),
            html_table(header, body_rows, classes)]
    path = sweep_dir / "summary.html"
    path.write_text(page(f"Sweep summary ({sweep_dir.name})", body), encoding="utf-8")
    return path


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


class SweepSummary(Callback):
    """Hydra callback: on multirun end, write the sweep's summary table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        metric, higher = ranking(config)
        csv_path, md_path = write_summary(sweep_dir, metric, higher)
        log.info("sweep summary: %s, %s and %s", md_path, csv_path, sweep_dir / "summary.html")
