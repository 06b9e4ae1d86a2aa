"""``report.html``: one self-contained page a stakeholder reads to decide whether to ship.

The page is built from what the run left in its directory and what the evaluate stage measured,
for any modality: the verdict and success table first; the config summary; the audit gates with
links to the data card; train/val loss and the main validation metric from ``metrics.jsonl`` on
one plot; per split, the metrics, notes, per-class and per-slice tables (weakest rows marked) with
a per-class bar chart, the modality's figures (``EvalReport.artifacts`` PNGs, e.g. the confusion
matrix) and Markdown sections, and robustness; retention (forgetting); where the checkpoint and
the export are. A monitoring run adds a drift section (:func:`drift_section`).

Figures are PNG ``data:`` URIs and the page has no scripts or external resources, so it reads
offline and can be mailed as one file.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from framework.evaluation import plots
from framework.evaluation.retention import Retention, lower_is_better
from framework.evaluation.success import Verdict
from framework.evaluation.types import EvalReport

WEAKEST_SHARE = 0.2  # the weakest fifth of the rows (at least one) is marked
_KEY_COLUMNS = ("recall", "accuracy", "f1", "wer", "cer")  # the column that ranks rows, first present

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.weak td{background:#fdecea}tr.fail td{background:#fdecea}tr.pass td{background:#eaf7ea}
.verdict{font-size:1.25rem;padding:.7rem 1rem;border-radius:6px;margin:1rem 0}
.yes{background:#e3f5e1;border:1px solid #7cc47a}.no{background:#fbe3e1;border:1px solid #e08a80}
.none{background:#f3f3f3;border:1px solid #ccc}
.tag{font-size:.75rem;color:#b3261e;font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.3rem 0}
figure{display:inline-block;margin:.4rem 1rem .4rem 0;vertical-align:top}figcaption{font-size:.8rem;color:#555}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem}
code{background:#f3f3f3;padding:0 .2rem}
"""


@dataclass
class RunReport:
    """What ``report.html`` shows about one evaluated run.

    Attributes:
        modality: The modality's name.
        run_dir: The run directory; relative links in the page point into it.
        reports: One report per evaluated split, the first being the one criteria refer to.
        verdicts: The success criteria, checked.
        enforce: Whether a failed criterion fails the run (``evaluation.enforce_success``).
        config_yaml: The resolved run config.
        retention: The retention set's before/after reports, when configured.
        checkpoint: The checkpoint the evaluated weights came from (the last one written).
        weights: Which weights were evaluated (``RunResult.weights``: trained, a checkpoint, or the
            starting weights, not trained).
        export_dir: Where the export stage wrote the deployable model, when it ran.
    """

    modality: str
    run_dir: Path
    reports: Sequence[EvalReport]
    verdicts: Sequence[Verdict]
    enforce: bool = True
    config_yaml: str = ""
    retention: Retention | None = None
    checkpoint: Path | None = None
    weights: str = ""
    export_dir: Path | None = None


# --- small HTML helpers ---------------------------------------------------------------------


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Counts as integers, other numbers to four decimals, the rest as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if math.isnan(value):
        return "nan"
    return str(int(value)) if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] = ()) -> str:
    """An HTML table; numbers are right-aligned; ``row_classes`` gives each row a CSS class."""
    out = ["<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(f'<td class="num">{esc(fmt(c))}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
                        else f"<td>{c if isinstance(c, Markup) else esc(c)}</td>" for c in row)
        out.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


class Markup(str):
    """A string that is already HTML (not escaped again by :func:`table`)."""


def inline_markdown(text: str) -> Markup:
    """One line of Markdown (backticks, bold) as HTML."""
    return Markup(_markdown().renderInline(text))


def markdown_block(text: str) -> str:
    """A Markdown block (tables included) as HTML; raw HTML in it is escaped."""
    return _markdown().render(text)


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def figure(uri: str, caption: str) -> str:
    """An embedded image with a caption."""
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def link(run_dir: Path, path: Path, text: str | None = None) -> str:
    """A link to ``path``, relative to the run dir when inside it."""
    path = Path(path)
    rel = path.relative_to(run_dir) if path.is_absolute() and path.is_relative_to(run_dir) else path
    return f'<a href="{esc(rel.as_posix())}">{esc(text or rel.as_posix())}</a>'


def page(title: str, body: Sequence[str]) -> str:
    """A whole HTML document."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --- sections -------------------------------------------------------------------------------


def verdict_section(verdicts: Sequence[Verdict], enforce: bool) -> str:
    """The verdict banner and the success table."""
    if not verdicts:
        return ('<section id="verdict"><div class="verdict none">No success criteria were set '
                "(<code>success:</code> in the config), so no verdict is given.</div></section>")
    fit = all(v.passed for v in verdicts)
    met = sum(v.passed for v in verdicts)
    note = "" if enforce or fit else " (not enforced: <code>evaluation.enforce_success=false</code>)"
    rows = [[v.criterion.metric, f"{v.criterion.op} {v.criterion.threshold:g}",
             "not reported" if v.value is None else v.value, "PASS" if v.passed else "FAIL"] for v in verdicts]
    return (f'<section id="verdict"><div class="verdict {"yes" if fit else "no"}"><strong>Fit to ship: '
            f'{"yes" if fit else "no"}</strong> ({met} of {len(verdicts)} success criteria met){note}</div>'
            + table(["metric", "required", "measured", "result"], rows,
                    ["pass" if v.passed else "fail" for v in verdicts]) + "</section>")


def config_section(config_yaml: str) -> str:
    """The settings a reader asks about first, then the whole resolved config, folded."""
    try:
        cfg = yaml.safe_load(config_yaml) or {}
    except yaml.YAMLError:
        cfg = {}
    rows: list[list[Any]] = []
    if isinstance(cfg, dict):
        rows += [["modality", (cfg.get("modality") or {}).get("name", "")]]
        for node, keys in (("model", None), ("data", ("root", "train", "val", "test", "format")),
                           ("trainer", ("epochs", "max_steps", "batch_size", "lr", "precision", "device"))):
            section = cfg.get(node) or {}
            if not isinstance(section, dict):
                continue
            for key, value in section.items():
                if (keys is None or key in keys) and not isinstance(value, (dict, list)) and value is not None:
                    rows.append([f"{node}.{key}", str(value)])
        rows += [[key, json.dumps(cfg[key])] for key in ("stages", "seed", "success") if key in cfg]
    half = (len(rows) + 1) // 2  # two settings per row keeps the summary short
    paired = [[*rows[i], *(rows[i + half] if i + half < len(rows) else ["", ""])] for i in range(half)]
    summary = table(["setting", "value", "setting", "value"], paired) if rows else "<p>No config recorded.</p>"
    return (f'<section id="config"><h2>Config</h2>{summary}<details><summary>Full resolved config</summary>'
            f"<pre>{esc(config_yaml)}</pre></details></section>")


def audit_section(run_dir: Path) -> str:
    """Every audit check from ``audit/audit.json``, with links to the data card."""
    path = run_dir / "audit" / "audit.json"
    head = '<section id="audit"><h2>Data audit</h2>'
    if not path.is_file():
        return head + "<p>The audit stage did not run for this run directory.</p></section>"
    audit = json.loads(path.read_text(encoding="utf-8"))
    links = " · ".join(link(run_dir, run_dir / "audit" / name) for name in ("datacard.md", "audit.json", "quarantine.jsonl")
                       if (run_dir / "audit" / name).is_file())
    status = "passed" if audit.get("passed") else "FAILED" + ("" if audit.get("enforce", True) else " (not enforced)")
    results = audit.get("results") or []
    rows = [[r.get("name", ""), "gate" if r.get("gate", True) else "warning", "pass" if r.get("passed") else "FAIL",
             r.get("summary", ""), "" if r.get("passed") else r.get("override", "")] for r in results]
    classes = ["" if r.get("passed") else "fail" for r in results]
    counts = ", ".join(f"{k}: {v}" for k, v in (audit.get("counts") or {}).items())
    return (head + f"<p>Gates <strong>{esc(status)}</strong>; records {esc(counts)}. {links}</p>"
            + table(["check", "kind", "result", "measured", "to relax it"], rows, classes) + "</section>")


def curves_section(run_dir: Path) -> str:
    """Train and val loss and the main validation metric, on one plot."""
    from framework.tracking.compare import load_metric_series

    series = load_metric_series(run_dir)
    losses = [k for k in series if k.startswith(("train/", "val/")) and "loss" in k.rsplit("/", 1)[-1]]
    losses.sort(key=lambda k: (not k.startswith("train/"), k))
    candidates = [k for k in series if k.startswith("val/") and "loss" not in k]
    metric = max(candidates, key=lambda k: (len(series[k]), any(w in k for w in ("acc", "f1", "wer")), k), default=None)
    uri = plots.training_curves(series, losses, metric)
    head = '<section id="curves"><h2>Training curves</h2>'
    if uri is None:
        return head + "<p>No training metrics in <code>metrics.jsonl</code> (the run did not train).</p></section>"
    return head + figure(uri, "loss (left axis) and " + (metric or "no validation metric") + " (right axis) by step") + \
        "</section>"


def _key_column(rows: Mapping[str, Mapping[str, float]]) -> str | None:
    columns = {c for row in rows.values() for c in row}
    for name in _KEY_COLUMNS:
        if name in columns:
            return name
    rest = sorted(columns - {"support", "count", "drop"})
    return rest[0] if rest else None


def weakest_rows(rows: Mapping[str, Mapping[str, float]]) -> tuple[str | None, list[str]]:
    """The ranking column and the weakest fifth of the rows (at least one) by it; rows that tie
    with the best row are never marked."""
    key = _key_column(rows)
    ranked = [n for n in rows if key in rows[n] and not math.isnan(rows[n][key])] if key else []
    if len(ranked) < 2:
        return key, []
    worse_first = sorted(ranked, key=lambda n: rows[n][key], reverse=lower_is_better(key))
    best = rows[worse_first[-1]][key]
    weak = worse_first[: max(1, math.ceil(WEAKEST_SHARE * len(ranked)))]
    return key, [n for n in weak if rows[n][key] != best]  # rows as good as the best are not weak


def breakdown_table(rows: Mapping[str, Mapping[str, float]], first: str) -> tuple[str, str | None, list[str]]:
    """A per-class or per-slice table with the weakest rows marked; also the key and weakest rows."""
    key, weak = weakest_rows(rows)
    columns = sorted({c for row in rows.values() for c in row}, key=lambda c: (c != key, c))
    body = [[Markup(f'{esc(name)} <span class="tag">◀ weakest</span>') if name in weak else name,
             *[row.get(c, "") for c in columns]] for name, row in rows.items()]
    return table([first, *columns], body, ["weak" if n in weak else "" for n in rows]), key, weak


def split_section(report: EvalReport, run_dir: Path) -> str:
    """Metrics, notes, per class, per slice, figures, sections and robustness of one split."""
    out = [f'<section id="split-{esc(report.split)}"><h2>Split <code>{esc(report.split)}</code></h2>']
    plain = {k: v for k, v in report.metrics.items() if "/" not in k}
    out.append(table(["metric", "value"], [[k, v] for k, v in plain.items()]))
    if report.notes:
        out.append("<ul>" + "".join(f"<li>{inline_markdown(n)}</li>" for n in report.notes) + "</ul>")
    if report.per_class:
        html_table, key, weak = breakdown_table(report.per_class, "class")
        out.append(f'<div class="per-class"><h3>Per class</h3>{html_table}')
        if key:
            values = {n: r[key] for n, r in report.per_class.items() if key in r}
            out.append(figure(plots.per_class_bars(values, key, weak), f"{key} per class (weakest in red)"))
        out.append("</div>")
    if report.per_slice:
        html_table, _, _ = breakdown_table(report.per_slice, "slice")
        out.append(f'<div class="per-slice"><h3>Per slice</h3>{html_table}</div>')
    pngs = [Path(a) for a in report.artifacts if Path(a).suffix.lower() == ".png"]
    others = [Path(a) for a in report.artifacts if Path(a).suffix.lower() != ".png"]
    if pngs:
        out.append('<div class="figures"><h3>Figures</h3>')
        for png in pngs:
            full = png if png.is_absolute() else run_dir / png
            if full.is_file():
                out.append(figure(plots.file_uri(full), png.name))
        out.append("</div>")
    for heading, body in report.sections.items():
        out.append(f'<div class="section"><h3>{inline_markdown(heading)}</h3>{markdown_block(body)}</div>')
    if report.robustness:
        html_table, _, _ = breakdown_table(report.robustness, "condition")
        out.append(f'<div class="robustness"><h3>Robustness</h3>{html_table}</div>')
    if others:
        out.append("<p>Files: " + ", ".join(link(run_dir, run_dir / p if not p.is_absolute() else p) for p in others)
                   + "</p>")
    out.append("</section>")
    return "".join(out)


def retention_section(retention: Retention) -> str:
    """Starting against trained weights on the retention set; a positive cost is forgetting."""
    cost = retention.cost()
    trained = retention.trained.metrics if retention.trained else {}
    start = retention.start.metrics if retention.start else {}
    names = [k for k in trained if "/" not in k]
    rows = [[n, start.get(n, ""), trained.get(n, ""), "" if n not in cost else f"{cost[n]:+.4f}"] for n in names]
    classes = ["weak" if cost.get(n, 0.0) > 0 else "" for n in names]
    missing = "" if retention.start else "<p>The run did not train, so the starting weights were not measured.</p>"
    return (f'<section id="retention"><h2>Retention (forgetting)</h2><p>Retention set <code>{esc(retention.source)}</code>, '
            f"{len(retention.records)} items; cost = how much worse the trained weights are than the starting ones "
            f"(positive: forgotten).</p>{missing}"
            + table(["metric", "starting weights", "trained weights", "cost"], rows, classes) + "</section>")


def artifacts_section(run_dir: Path, checkpoint: Path | None, export_dir: Path | None) -> str:
    """Where the weights, the export and the machine-readable results are."""
    rows = []
    if checkpoint is not None:
        rows.append(["checkpoint", Markup(link(run_dir, checkpoint))])
    if export_dir is not None and Path(export_dir).is_dir():
        files = sorted(p for p in Path(export_dir).iterdir() if p.is_file())
        rows.append(["export", Markup(link(run_dir, export_dir) + ": " + ", ".join(esc(p.name) for p in files))])
    else:
        rows.append(["export", "not written (add export to stages)"])
    for name in ("report.md", "summary.json", "metrics.jsonl", "eval/reports.json"):
        if (run_dir / name).is_file() or name == "summary.json":
            rows.append([name, Markup(link(run_dir, run_dir / name))])
    return '<section id="artifacts"><h2>Where things are</h2>' + table(["what", "path"], rows) + "</section>"


def drift_section(drift: Mapping[str, Any], figures: Mapping[str, str] | None = None) -> str:
    """The drift verdict and one row per signal (a ``monitor/drift.json`` payload), with plots.

    Args:
        drift: The payload of :meth:`framework.monitoring.DriftReport.to_json`.
        figures: Signal name -> data URI of its reference-against-batch plot.
    """
    signals = drift.get("signals") or []
    drifted = [s["name"] for s in signals if s["verdict"] == "drift"]
    banner = ("no" if drifted else "yes")
    text = (f"Drift found in {len(drifted)} of {len(signals)} signals: " + ", ".join(drifted)) if drifted else \
        f"No drift in {len(signals)} signals"
    rows = [[s["name"], s["kind"], s.get("test", ""), s.get("statistic"), s.get("p_value"),
             "" if s.get("psi") is None else s["psi"], s["verdict"]] for s in signals]
    classes = ["fail" if s["verdict"] == "drift" else "weak" if s["verdict"] == "watch" else "" for s in signals]
    out = [f'<section id="drift"><h2>Drift</h2><div class="verdict {banner}"><strong>{esc(text)}</strong> '
           f"(batch of {drift.get('batch_size')} against a reference of {drift.get('reference_size')}; "
           f"drift = p &lt; {esc(drift.get('alpha'))} and PSI &ge; {esc(drift.get('psi_threshold'))})</div>",
           table(["signal", "kind", "test", "statistic", "p-value", "PSI", "verdict"], rows, classes)]
    for name, uri in (figures or {}).items():
        out.append(figure(uri, name))
    review = drift.get("review")
    if review:
        strata = ", ".join(f"{k}: {v}" for k, v in review.get("strata", {}).items())
        out.append(f"<h3>Review sample</h3><p>{review.get('size')} items ({esc(review.get('share'))} of the batch, "
                   f"lowest confidence first within each predicted class; strata {esc(strata)}) written to "
                   f"<code>{esc(review.get('path'))}</code> for Label Studio.</p>")
    out.append("</section>")
    return "".join(out)


# --- the page -------------------------------------------------------------------------------


def render(run: RunReport) -> str:
    """The HTML text of ``report.html``."""
    weights = f"; weights evaluated: <strong>{esc(run.weights)}</strong>" if run.weights else ""
    body = [f"<h1>Evaluation report: {esc(run.modality)}</h1><p>Run <code>{esc(run.run_dir)}</code>{weights}</p>",
            verdict_section(run.verdicts, run.enforce), config_section(run.config_yaml), audit_section(run.run_dir),
            curves_section(run.run_dir)]
    body += [split_section(report, run.run_dir) for report in run.reports]
    if run.retention is not None:
        body.append(retention_section(run.retention))
    body.append(artifacts_section(run.run_dir, run.checkpoint, run.export_dir))
    return page(f"Evaluation report: {run.modality} ({run.run_dir.name})", body)


def write(run: RunReport, path: Path | None = None) -> Path:
    """Write ``report.html`` (into the run dir unless ``path`` is given); return its path."""
    path = Path(path) if path is not None else run.run_dir / "report.html"
    from framework.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, render(run))
