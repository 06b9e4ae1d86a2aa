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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from framework.evaluation import plots
from framework.evaluation.benchmarks import Benchmarks
from framework.evaluation.retention import Retention, lower_is_better
from framework.evaluation.success import Verdict
from framework.evaluation.types import EvalReport
from framework.wording import COUNT_NAMES, number, plural

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
        benchmarks: The lm-eval benchmark scores, when ``evaluation.benchmarks`` is set.
        checkpoint: The checkpoint the evaluated weights came from (the last one written).
        weights: Which weights were evaluated (``RunResult.weights``: trained, a checkpoint, or the
            starting weights, not trained).
        export_dir: Where the export stage wrote the deployable model, when it ran.
        sources: The extra sets of ``evaluation.sets`` among ``reports`` (by split name) and
            where each came from.
        merged: The reviewed corrections in the training split
            (:func:`framework.data.provenance.merged_summary`), when it holds any.
    """

    modality: str
    run_dir: Path
    reports: Sequence[EvalReport]
    verdicts: Sequence[Verdict]
    enforce: bool = True
    config_yaml: str = ""
    retention: Retention | None = None
    benchmarks: Benchmarks | None = None
    checkpoint: Path | None = None
    weights: str = ""
    export_dir: Path | None = None
    sources: Mapping[str, Path] = field(default_factory=dict)
    merged: Mapping[str, Any] | None = None


# --- small HTML helpers ---------------------------------------------------------------------


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, name: str | None = None) -> str:
    """Numbers in one format (:func:`framework.wording.number`; ``name`` tells a count), the rest as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return number(value, name)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] = ()) -> str:
    """An HTML table; numbers are right-aligned; ``row_classes`` gives each row a CSS class."""
    out = ["<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        # A count is told by its column's header, or by the row's name in a metric/value table.
        names = [header[j] if j < len(header) else None for j in range(len(row))]
        if len(row) == 2 and isinstance(row[0], str) and row[0] in COUNT_NAMES:
            names[1] = row[0]
        cells = "".join(f'<td class="num">{esc(fmt(c, n))}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
                        else f"<td>{c if isinstance(c, Markup) else esc(c)}</td>" for c, n in zip(row, names))
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


def yaml_value(value: Any) -> str:
    """A config value as its YAML (what the user writes in an override): ``false``, ``null``,
    ``[audit, train]``, ``{accuracy: '>=0.9'}``; never Python's ``False`` or ``None``."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()


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
                    rows.append([f"{node}.{key}", yaml_value(value)])
        rows += [[key, yaml_value(cfg[key])] for key in ("stages", "seed", "success") if key in cfg]
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
    # A validation row repeats the train loss (``val/train_loss``, its mean since the last
    # validation): the train curve is drawn once, from the train rows.
    losses = [k for k in series if k.startswith(("train/", "val/")) and "loss" in k.rsplit("/", 1)[-1]
              and not k.startswith("val/train_")]
    losses.sort(key=lambda k: (not k.startswith("train/"), k))
    candidates = [k for k in series if k.startswith("val/") and "loss" not in k]
    metric = max(candidates, key=lambda k: (len(series[k]), any(w in k for w in ("acc", "f1", "wer")), k), default=None)
    uri = plots.training_curves(series, losses, metric)
    head = '<section id="curves"><h2>Training curves</h2>'
    if uri is None:
        return head + "<p>No training metrics in <code>metrics.jsonl</code> (the run did not train).</p></section>"
    return head + figure(uri, "loss (left axis) and " + (plots.series_label(metric) if metric else "no validation metric")
                         + " (right axis) by optimizer step") + "</section>"


def _key_column(rows: Mapping[str, Mapping[str, float]]) -> str | None:
    columns = {c for row in rows.values() for c in row}
    for name in _KEY_COLUMNS:
        if name in columns:
            return name
    rest = sorted(columns - {"support", "count", "drop"})
    return rest[0] if rest else None


def weakest_rows(rows: Mapping[str, Mapping[str, float]]) -> tuple[str | None, list[str]]:
    """The ranking column and the weakest fifth of the rows (at least one) by it.

    Rows that tie with the last one taken are taken too (two classes at the same lowest recall
    are both weakest, never one picked by name), and rows as good as the best row are never
    marked (every class perfect: nothing is weakest)."""
    key = _key_column(rows)
    ranked = [n for n in rows if key in rows[n] and not math.isnan(rows[n][key])] if key else []
    if len(ranked) < 2:
        return key, []
    worse_first = sorted(ranked, key=lambda n: rows[n][key], reverse=lower_is_better(key))
    best = rows[worse_first[-1]][key]
    cutoff = rows[worse_first[max(1, math.ceil(WEAKEST_SHARE * len(ranked))) - 1]][key]
    weak = [n for n in worse_first if (rows[n][key] >= cutoff if lower_is_better(key) else rows[n][key] <= cutoff)]
    return key, [n for n in weak if rows[n][key] != best]


def breakdown_table(rows: Mapping[str, Mapping[str, float]], first: str) -> tuple[str, str | None, list[str]]:
    """A per-class or per-slice table with the weakest rows marked (``tied`` when several share
    the weakest value); also the key and weakest rows."""
    key, weak = weakest_rows(rows)
    columns = sorted({c for row in rows.values() for c in row}, key=lambda c: (c != key, c))
    values = [rows[n][key] for n in weak] if key else []
    tag = "◀ weakest" + (" (tied)" if len(weak) > 1 and len(set(values)) == 1 else "")
    body = [[Markup(f'{esc(name)} <span class="tag">{tag}</span>') if name in weak else name,
             *[row.get(c, "") for c in columns]] for name, row in rows.items()]
    return table([first, *columns], body, ["weak" if n in weak else "" for n in rows]), key, weak


def split_section(report: EvalReport, run_dir: Path, source: Path | None = None) -> str:
    """Metrics, notes, per class, per slice, figures, sections and robustness of one split, or of
    an extra set read from ``source``."""
    if source is None:
        out = [f'<section id="split-{esc(report.split)}"><h2>Split <code>{esc(report.split)}</code></h2>']
    else:
        out = [f'<section id="set-{esc(report.split)}"><h2>Set <code>{esc(report.split)}</code></h2>'
               f"<p>From <code>{esc(source)}</code>; metrics reported as <code>{esc(report.split)}/&lt;metric&gt;</code>."
               "</p>"]
    plain = {k: v for k, v in report.metrics.items() if "/" not in k}
    out.append(table(["metric", "value"], [[k, v] for k, v in plain.items()]))
    if report.notes:
        out.append("<ul>" + "".join(f"<li>{inline_markdown(n)}</li>" for n in report.notes) + "</ul>")
    if report.per_class:
        html_table, key, weak = breakdown_table(report.per_class, "class")
        out.append(f'<div class="per-class"><h3>Per class</h3>{html_table}')
        if key:
            values = {n: r[key] for n, r in report.per_class.items() if key in r}
            out.append(figure(plots.per_class_bars(values, key, weak), f"{key} per class" + (" (weakest in red)" if weak else "")))
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
            f"{plural(retention.items, 'item')}; cost = how much worse the trained weights are than the starting ones "
            f"(positive: forgotten).</p>{missing}"
            + table(["metric", "starting weights", "trained weights", "cost"], rows, classes) + "</section>")


def benchmarks_section(benchmarks: Benchmarks) -> str:
    """lm-eval tasks, starting against trained weights; a positive cost is forgetting."""
    rows = benchmarks.rows()
    classes = ["weak" if isinstance(r[5], str) and r[5].startswith("+") and float(r[5]) > 0 else "" for r in rows]
    missing = "" if benchmarks.start is not None else \
        "<p>The starting weights were not scored (the run did not train, or <code>evaluation.benchmark_start=false</code>).</p>"
    sources = ", ".join(f"<code>{esc(t)}</code>: {esc(src)}" for t, src in benchmarks.sources.items())
    return ('<section id="benchmarks"><h2>Benchmarks (lm-evaluation-harness)</h2><p>Scored on the run\'s model in '
            f"memory; cost = how much worse the trained weights are (positive: forgotten). Tasks from {sources}.</p>"
            f"{missing}" + table(["task", "metric", "starting weights", "trained weights", "stderr", "cost", "items"],
                                 rows, classes) + "</section>")


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _or_nan(value: Any) -> Any:
    return math.nan if value is None else value


def _rate_rows(rows: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    out = []
    for name, r in rows.items():
        ci = f"[{_or_nan(r.get('win_rate_low')):.3f}, {_or_nan(r.get('win_rate_high')):.3f}]" if "win_rate_low" in r else ""
        out.append([name, _or_nan(r.get("win_rate")), ci, _or_nan(r.get("tie_rate")), _or_nan(r.get("loss_rate")),
                    _or_nan(r.get("pairs")), _or_nan(r.get("judgments"))])
    return out


def human_section(run_dir: Path) -> str:
    """Blind human evaluation (``humaneval/results.json``) and the LLM judge (``humaneval/judge.json``),
    as ``python -m framework.humaneval`` wrote them; ``""`` when it wrote neither."""
    from framework.humaneval.pairs import HUMANEVAL_DIR, JUDGE_JSON, RESULTS_JSON

    folder = Path(run_dir) / HUMANEVAL_DIR
    results, judge = _load(folder / RESULTS_JSON), _load(folder / JUDGE_JSON)
    if results is None and judge is None:
        return ""
    head = ["", "win rate", "95% interval", "tie rate", "loss rate", "pairs", "judgments"]
    out = ['<section id="human"><h2>Blind human evaluation</h2>']
    if results is not None:
        agree = results["agreement"]
        gold = results["gold"]
        out.append(f"<p>Trained model against {esc(results['baseline'])} on split <code>{esc(results['split'])}</code> "
                   f"({esc(results['interface'])} interface); rates are the trained model's, intervals from resampling "
                   f"pairs. Rater agreement: {esc(agree['method'])} {_or_nan(agree['value']):.3f} over {agree['items']} pairs "
                   f"with two or more raters. Gold pairs: accuracy {_or_nan(gold['accuracy']):.3f} over "
                   f"{gold['judgments']} judgments ({gold['pairs']} pairs planted).</p>")
        out.append(table(head, _rate_rows({"overall": results["overall"], **results.get("per_slice", {})})))
        raters = results.get("per_rater") or {}
        rows = [[w, r["judgments"], _or_nan(r["gold_accuracy"]), _or_nan(r["share_a"]), _or_nan(r["kappa_vs_consensus"]),
                 "position bias" if r["position_bias"] else ""] for w, r in raters.items()]
        out.append("<h3>Raters</h3>" + table(["rater", "judgments", "gold accuracy", "share of A", "kappa vs consensus",
                                               "flag"], rows, ["fail" if r["position_bias"] else "" for r in raters.values()]))
    if judge is not None:
        out.append(f"<h3>LLM judge</h3><p>Judge <code>{esc(judge['judge'])}</code>, each pair in both orders; "
                   f"position-consistent on {_or_nan(judge['consistency']):.3f} of pairs; gold accuracy "
                   f"{_or_nan(judge['gold_accuracy']):.3f}.</p>")
        out.append(table(head, _rate_rows({"judge": judge["overall"]})))
        human = judge.get("human_agreement")
        if human:
            out.append(f"<p>Against the human consensus on {human['pairs']} pairs: kappa {_or_nan(human['kappa']):.3f}, "
                       f"accuracy {_or_nan(human['accuracy']):.3f}.</p>")
    out.append("</section>")
    return "".join(out)


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
    for name in ("report.md", "summary.json", "metrics.jsonl", "eval/reports.json", "eval/benchmarks.json"):
        if (run_dir / name).is_file() or name == "summary.json":
            rows.append([name, Markup(link(run_dir, run_dir / name))])
    return '<section id="artifacts"><h2>Where things are</h2>' + table(["what", "path"], rows) + "</section>"


def merged_section(merged: Mapping[str, Any]) -> str:
    """Reviewed corrections merged into the training split: how many, from where, which labels changed."""
    head = (f'<section id="merged"><h2>Merged corrections</h2><p>{fmt(merged["items"])} training items came from '
            f'review, {fmt(merged["corrected"])} with a label that differs from the model\'s prediction or the '
            f'earlier label; merged {esc(", ".join(merged["merged_at"]))}.</p>')
    out = [head, table(["source", "items"], [[s, n] for s, n in merged["sources"].items()])]
    if merged["label_changes"]:
        out.append(table(["label change", "items"], [[c, n] for c, n in merged["label_changes"].items()]))
    out.append(f'<p>Annotators: {esc(", ".join(f"{a} ({n})" for a, n in merged["annotators"].items()))}</p></section>')
    return "".join(out)


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
        out.append(f"<h3>Review sample</h3><p>{plural(int(review.get('size') or 0), 'item')} "
                   f"({esc(review.get('share'))} of the batch, "
                   f"lowest confidence first within each predicted class; strata {esc(strata)}) written to "
                   f"<code>{esc(review.get('path'))}</code> for Label Studio.</p>")
    out.append("</section>")
    return "".join(out)


def history_section(entries: Sequence[Any]) -> str:
    """The monitoring history (``monitor/history.jsonl`` entries, oldest first): error rates over
    time against the launch figures, drift signals' PSI over time, and the latest evaluation's
    rates with their intervals."""
    evaluations = [e for e in entries if e.kind == "evaluate"]
    drifts = [e for e in entries if e.kind == "drift"]
    out = ['<section id="history"><h2>History</h2>',
           f"<p>{plural(len(evaluations), 'evaluation')} of labelled batches and "
           f"{plural(len(drifts), 'drift check')}, oldest first.</p>"]
    if evaluations:
        out.append(figure(plots.error_rate_history(evaluations), "error rate per evaluated batch, with 95% Wilson "
                          "intervals; dashed: the launch run's rate"))
        latest = evaluations[-1]
        state = ("ALERT: " + "; ".join(latest.alerts)) if latest.alerts else "no metric past its threshold"
        out.append(f"<h3>Latest evaluation: <code>{esc(latest.batch)}</code> ({esc(latest.timestamp)})</h3>"
                   f"<p>{esc(state)} (allowed increases: "
                   f"{esc(', '.join(f'{k} +{v:g}' for k, v in latest.max_increase.items()) or 'none')}; launch figures "
                   f"from split <code>{esc(latest.launch_split or 'none')}</code>).</p>")
        rows, classes = [], []
        for name, rate in latest.rates.items():
            change = latest.changes.get(name) or {}
            rows.append([name, rate["rate"], f"[{fmt(rate['low'])}, {fmt(rate['high'])}]", rate["n"],
                         change.get("launch", ""), "" if not change else f"{change['change']:+.4f}",
                         "" if not change else "yes" if change["beyond_noise"] else "no"])
            alerted = any(line.startswith(name + " ") for line in latest.alerts)
            classes.append("fail" if alerted else "weak" if change.get("beyond_noise") and change["change"] > 0 else "")
        out.append(table(["metric", "error rate", "95% interval", "items", "launch", "change", "beyond noise"],
                         rows, classes))
    if drifts:
        out.append(figure(plots.psi_history(drifts), "PSI of each drift signal per checked batch; "
                          "filled markers: drift"))
    out.append("</section>")
    return "".join(out)


# --- the page -------------------------------------------------------------------------------


def render(run: RunReport) -> str:
    """The HTML text of ``report.html``."""
    weights = f"; weights evaluated: <strong>{esc(run.weights)}</strong>" if run.weights else ""
    body = [f"<h1>Evaluation report: {esc(run.modality)}</h1><p>Run <code>{esc(run.run_dir)}</code>{weights}</p>",
            verdict_section(run.verdicts, run.enforce), config_section(run.config_yaml), audit_section(run.run_dir)]
    if run.merged:
        body.append(merged_section(run.merged))
    body.append(curves_section(run.run_dir))
    body += [split_section(report, run.run_dir, run.sources.get(report.split)) for report in run.reports]
    if run.retention is not None:
        body.append(retention_section(run.retention))
    if run.benchmarks is not None and run.benchmarks.trained is not None:
        body.append(benchmarks_section(run.benchmarks))
    human = human_section(run.run_dir)
    if human:
        body.append(human)
    body.append(artifacts_section(run.run_dir, run.checkpoint, run.export_dir))
    return page(f"Evaluation report: {run.modality} ({run.run_dir.name})", body)


def load_run_report(run_dir: Path, verdicts: Sequence[Verdict] | None = None) -> RunReport | None:
    """The page of a finished run, rebuilt from what it wrote (``eval/reports.json``,
    ``eval/benchmarks.json``, ``summary.json``, its config), for results added after the run
    (human evaluation); ``None`` when the run never evaluated.

    Args:
        run_dir: The run directory.
        verdicts: The success criteria checked again; default: none shown.
    """
    from framework.evaluation.benchmarks import load_benchmarks
    from framework.evaluation.report import load_reports_json
    from framework.evaluation.retention import SPLIT, START_SPLIT
    from framework.evaluation.report import load_run_config
    from framework.training import latest_checkpoint

    run_dir = Path(run_dir)
    reports = load_reports_json(run_dir)
    if not reports:
        return None
    cfg = load_run_config(run_dir)
    retention = None
    if SPLIT in reports:
        source = (cfg.get("evaluation") or {}).get("retention") or "retention set"
        trained = reports[SPLIT]
        retention = Retention(source=Path(source), start=reports.get(START_SPLIT), trained=trained,
                              size=int(trained.metrics["count"]) if "count" in trained.metrics else None)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    export_dir = run_dir / "export"
    return RunReport(modality=str((cfg.get("modality") or {}).get("name", "")), run_dir=run_dir,
                     reports=[r for s, r in reports.items() if s not in (SPLIT, START_SPLIT)],
                     verdicts=list(verdicts or []), enforce=bool(summary.get("enforce_success", True)),
                     config_yaml=yaml.safe_dump(cfg, sort_keys=False) if cfg else "", retention=retention,
                     benchmarks=load_benchmarks(run_dir), checkpoint=latest_checkpoint(run_dir),
                     export_dir=export_dir if export_dir.is_dir() else None)


def write(run: RunReport, path: Path | None = None) -> Path:
    """Write ``report.html`` (into the run dir unless ``path`` is given); return its path."""
    path = Path(path) if path is not None else run.run_dir / "report.html"
    from framework.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, render(run))
