"""``RUN_DIR/monitor/report.html``: the monitoring report, rebuilt from the files beside it.

Both monitoring commands rebuild the whole page from what ``monitor/`` holds, so neither loses
what the other wrote: the history over time (``history.jsonl``: error rates with their intervals
against the launch figures, drift signals' PSI), the latest evaluation's table, and the latest
drift check (``drift.json`` with its plots in ``drift_figures/``).
"""

from __future__ import annotations

import json
from pathlib import Path

from framework.atomic import atomic_write_text
from framework.monitoring import history

DRIFT_FIGURES = "drift_figures"  # one PNG per signal of the latest drift check


def figure_path(out_dir: Path, signal: str) -> Path:
    """Where the latest drift check's plot of ``signal`` is kept."""
    return Path(out_dir) / DRIFT_FIGURES / (signal.replace("/", "__") + ".png")


def write_monitor_page(out_dir: Path, run_dir: Path, modality: str, weights: Path) -> Path:
    """Write ``out_dir/report.html`` from ``history.jsonl``, ``drift.json`` and the drift figures."""
    from framework.evaluation import plots
    from framework.evaluation.html_report import drift_section, esc, history_section, page

    out_dir = Path(out_dir)
    entries = history.read(out_dir / history.HISTORY_FILE)
    body = [f"<h1>Monitoring report: {esc(modality)}</h1>",
            f"<p>Run <code>{esc(run_dir)}</code>, weights <code>{esc(weights)}</code>.</p>"]
    if entries:
        body.append(history_section(entries))
    drift_json = out_dir / "drift.json"
    if drift_json.is_file():
        payload = json.loads(drift_json.read_text(encoding="utf-8"))
        figures = {s["name"]: plots.file_uri(figure_path(out_dir, s["name"])) for s in payload.get("signals", [])
                   if figure_path(out_dir, s["name"]).is_file()}
        body.append(drift_section(payload, figures))
    return atomic_write_text(out_dir / "report.html", page(f"Monitoring report ({Path(run_dir).name})", body))
