"""Compare two runs: what differs in their configs, and how their metrics came out.

Used by ``python -m framework --compare RUN_A RUN_B``; reads only files in the run dirs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from framework.evaluation.baseline import compare_evaluations
from framework.evaluation.direction import lower_is_better
from framework.config_tree import flatten


def load_run_config(run_dir: Path) -> dict[str, str]:
    """The run's resolved config, flattened: ``.hydra/config.yaml`` if present, else ``config.yaml``."""
    for candidate in (Path(run_dir) / ".hydra" / "config.yaml", Path(run_dir) / "config.yaml"):
        if candidate.is_file():
            return flatten(yaml.safe_load(candidate.read_text(encoding="utf-8")) or {})
    return {}


def load_metric_series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{"train/loss": [(step, value), ...], "val/val_loss": [...]}`` from ``metrics.jsonl``."""
    series: dict[str, list[tuple[int, float]]] = {}
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return series
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        group = row.get("split") or row.get("kind", "")
        if group in ("checkpoint", "run_start"):
            continue
        for key, value in (row.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(f"{group}/{key}", []).append((int(row.get("step", 0)), float(value)))
    return series


def compare_runs(run_a: Path, run_b: Path) -> str:
    """A Markdown report: config keys that differ, then final and best value of each metric.

    Args:
        run_a: The first run dir (the baseline; deltas are ``B - A``). When either run has
            ``eval/reports.json``, B's evaluation is set against A's per split and per class, with
            the changes beyond noise marked (:mod:`framework.evaluation.baseline`).
        run_b: The second run dir.
    """
    run_a, run_b = Path(run_a), Path(run_b)
    lines = [f"# Run comparison\n\n- A: `{run_a}`\n- B: `{run_b}`\n", "## Config differences\n"]
    lines += _config_table(load_run_config(run_a), load_run_config(run_b))
    lines.append("\n## Metrics\n")
    lines += _metric_table(load_metric_series(run_a), load_metric_series(run_b))
    if (run_a / "eval" / "reports.json").is_file() or (run_b / "eval" / "reports.json").is_file():
        lines += ["\n## Evaluation against the baseline (A)\n", *compare_evaluations(run_a, run_b)]
    return "\n".join(lines) + "\n"


def _config_table(a: dict[str, str], b: dict[str, str]) -> list[str]:
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if not keys:
        return ["The configs are identical."]
    rows = ["| key | A | B |", "|---|---|---|"]
    rows += [f"| `{k}` | {_cell(a.get(k, '(absent)'))} | {_cell(b.get(k, '(absent)'))} |" for k in keys]
    return rows


def _metric_table(a: dict[str, list[tuple[int, float]]], b: dict[str, list[tuple[int, float]]]) -> list[str]:
    names = sorted(a.keys() | b.keys())
    if not names:
        return ["Neither run has metrics.jsonl rows."]
    rows = ["| metric | A final | B final | delta (B-A) | A best | B best |", "|---|---|---|---|---|---|"]
    for name in names:
        pick = min if lower_is_better(name) else max
        fa, fb = (_final(s.get(name)) for s in (a, b))
        ba, bb = (pick(v for _, v in s[name]) if s.get(name) else None for s in (a, b))
        delta = fb - fa if fa is not None and fb is not None else None
        rows.append(f"| `{name}` | {_num(fa)} | {_num(fb)} | {_num(delta, signed=True)} | {_num(ba)} | {_num(bb)} |")
    return rows


def _final(points: list[tuple[int, float]] | None) -> float | None:
    return points[-1][1] if points else None


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
