"""Writing the audit artifacts: ``audit.json`` (machine-readable) and ``datacard.md`` (for people).

The audit's own data card, written into ``run_dir/audit/``; the card that documents a dataset
(``datacard.yaml`` / ``DATASET.md`` in the data root) is read by :mod:`framework.data.dataset_card`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

from framework.data.checks import CheckResult
from framework.data.records import DataBundle, Quarantined
from framework.json_values import jsonable
from framework.wording import plural

MAX_FINDINGS_SHOWN = 10


def write_quarantine(items: Iterable[Quarantined], path: Path) -> Path:
    """Every quarantined item as one JSON object per line."""
    from framework.atomic import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(jsonable(asdict(q)), ensure_ascii=False) + "\n" for q in items))


def write_audit_json(payload: dict[str, Any], path: Path) -> Path:
    """``audit.json``: the payload made JSON-safe (strict JSON: no NaN)."""
    from framework.atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(jsonable(payload), indent=2, ensure_ascii=False, allow_nan=False))


def table(header: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return out


def _counts_section(data: DataBundle) -> list[str]:
    lines = ["## Counts", ""] + table(["split", "records"], data.counts().items()) + [""]
    if data.classes:
        per_split = {sp: Counter(str(r.label) for r in data.records(sp)) for sp in data.splits}
        lines += ["### Per class", ""] + table(["class", *data.splits],
                                                 ([c, *(per_split[sp].get(c, 0) for sp in data.splits)] for c in data.classes))
        lines.append("")
    fields = sorted({f for r in data.records() for f in r.slices})
    for f in fields:
        per_split = {sp: Counter(r.slices.get(f, "<missing>") for r in data.records(sp)) for sp in data.splits}
        values = sorted(set().union(*per_split.values()))
        lines += [f"### Slice `{f}`", ""] + table([f, *data.splits], ([v, *(per_split[sp].get(v, 0) for sp in data.splits)] for v in values))
        lines.append("")
    return lines


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.2f}"


def agreement_tables(measured: dict[str, Any]) -> list[str]:
    """Each annotator against the consensus (flagged ones marked) and the pairwise kappa matrix."""
    per, pairwise, flagged = measured.get("per_annotator") or {}, measured.get("pairwise") or {}, set(measured.get("outliers") or [])
    lines: list[str] = []
    if per:
        lines += ["### Each annotator against the consensus", ""]
        lines += table(["annotator", "items", "kappa", "agreement", "flag"],
                        ([a, int(m["items"]), _fmt(m["kappa"]), _fmt(m["agreement"]),
                          "**far below the others**" if a in flagged else ""] for a, m in sorted(per.items())))
        lines.append("")
    if len(pairwise) >= 3:
        names = sorted(pairwise)
        lines += ["### Pairwise Cohen's kappa", ""]
        lines += table(["", *names], ([a, *(_fmt(pairwise[a].get(b)) for b in names)] for a in names)) + [""]
    return lines


def _gold_note(accuracy: CheckResult | None) -> list[str]:
    if accuracy is None or accuracy.measured.get("gold_items", 0):
        return []
    return ["**No gold items**: annotator accuracy was not checked. Add known answers with "
            "data.gold=gold.jsonl, Label Studio ground-truth annotations, or data.gold_field=FIELD.", ""]


def _annotator_section(data: DataBundle, guidelines_version: str, results: list[CheckResult]) -> list[str]:
    by_name = {r.name: r for r in results}
    lines = ["## Annotation", "", f"Guidelines version: {guidelines_version or '(not recorded)'}", ""]
    if not data.annotations:
        return lines + ["No annotation records.", ""] + _gold_note(by_name.get("accuracy"))
    per = Counter(a.annotator for a in data.annotations)
    items = len({a.item_id for a in data.annotations})
    lines += [f"{plural(len(data.annotations), 'label')} on {plural(items, 'item')} by {plural(len(per), 'annotator')}.", ""]
    lines += table(["annotator", "labels"], sorted(per.items())) + [""]
    consistency = by_name.get("consistency")
    if consistency is not None:
        lines += agreement_tables(consistency.measured)
        lines += [f"Warning: {f.detail}." for f in consistency.findings if f.kind == "unmatched_annotations"]
        lines += [""] if lines[-1] else []
    return lines + _gold_note(by_name.get("accuracy"))


def _gates_section(results: list[CheckResult]) -> list[str]:
    rows = [[r.name, "gate" if r.gate else "warning", "PASS" if r.passed else "FAIL", r.summary,
             "" if r.passed else r.override] for r in results]
    lines = ["## Checks", ""] + table(["check", "kind", "result", "measured vs threshold", "override"], rows) + [""]
    for r in results:
        if r.findings:
            lines += [f"### {r.name}: {len(r.findings)} finding(s)", ""]
            lines += [f"- `{f.kind}` {', '.join(f.items[:3])}: {f.detail}" for f in r.findings[:MAX_FINDINGS_SHOWN]]
            if len(r.findings) > MAX_FINDINGS_SHOWN:
                lines.append(f"- ... {len(r.findings) - MAX_FINDINGS_SHOWN} more in audit.json")
            lines.append("")
    return lines


def _quarantine_section(items: list[Quarantined]) -> list[str]:
    lines = ["## Quarantine", ""]
    if not items:
        return lines + ["Nothing was quarantined.", ""]
    lines += table(["reason", "items"], sorted(Counter(q.reason for q in items).items())) + [""]
    lines += [f"- {q.source}: {q.reason}: {q.detail}" for q in items[:20]]
    if len(items) > 20:
        lines.append(f"- ... {len(items) - 20} more in quarantine.jsonl")
    return lines + [""]


def _sources_section(data: DataBundle, sources: list[str], manifests: dict[str, str],
                     documented: dict[str, Any]) -> list[str]:
    lines = ["## Sources", "", f"Data root: `{data.root}`", ""]
    if documented.get("card"):
        lines += [f"Data set card: `{documented['card']}`", ""]
    if documented.get("description"):
        lines += [str(documented["description"]), ""]
    if documented.get("license"):
        lines += [f"License: {documented['license']}", ""]
    lines += [f"- {split}: `{path}`" for split, path in manifests.items() if path]
    from framework.data.sources import source_lines

    lines += source_lines(data)  # each source of a mixed split, with its weight and counts
    lines += [f"- {s}" for s in sources] or [f"- (no provenance recorded: add {data.root}/datacard.yaml with "
                                             f"'sources: [...]', or set data.sources)"]
    return lines + [""]


def render_datacard(data: DataBundle, results: list[CheckResult], *, modality: str, passed: bool, timestamp: str,
                    sources: list[str], manifests: dict[str, str], guidelines_version: str,
                    documented: dict[str, Any] | None = None) -> str:
    """The data card as Markdown text."""
    lines = [f"# Data card: {modality}", "", f"Audited {timestamp}. Gates: **{'PASSED' if passed else 'FAILED'}**.", ""]
    lines += _sources_section(data, sources, manifests, documented or {})
    lines += _counts_section(data) + _annotator_section(data, guidelines_version, results)
    from framework.data.provenance import merged_summary, summary_markdown

    merged = merged_summary(data.records("train"))
    lines += summary_markdown(merged) if merged else []
    lines += _gates_section(results) + _quarantine_section(data.quarantine)
    return "\n".join(lines)
