"""The human-evaluation section of ``report.html``, read from ``RUN/humaneval/``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from framework.humaneval.pairs import HUMANEVAL_DIR

JUDGE_JSON = "judge.json"


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _num(value: Any) -> Any:
    return math.nan if value is None else value


def _rate_rows(rows: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    out = []
    for name, r in rows.items():
        ci = f"[{_num(r.get('win_rate_low')):.3f}, {_num(r.get('win_rate_high')):.3f}]" if "win_rate_low" in r else ""
        out.append([name, _num(r.get("win_rate")), ci, _num(r.get("tie_rate")), _num(r.get("loss_rate")),
                    _num(r.get("pairs")), _num(r.get("judgments"))])
    return out


def human_html(run_dir: Path) -> str:
    """The section, or ``""`` when neither human results nor a judge's are in the run."""
    from framework.evaluation.html_report import esc, table

    folder = Path(run_dir) / HUMANEVAL_DIR
    results, judge = _load(folder / "results.json"), _load(folder / JUDGE_JSON)
    if results is None and judge is None:
        return ""
    head = ["", "win rate", "95% interval", "tie rate", "loss rate", "pairs", "judgments"]
    out = ['<section id="human"><h2>Blind human evaluation</h2>']
    if results is not None:
        agree = results["agreement"]
        gold = results["gold"]
        out.append(f"<p>Trained model against {esc(results['baseline'])} on split <code>{esc(results['split'])}</code> "
                   f"({esc(results['interface'])} interface); rates are the trained model's, intervals from resampling "
                   f"pairs. Rater agreement: {esc(agree['method'])} {_num(agree['value']):.3f} over {agree['items']} pairs "
                   f"with two or more raters. Gold pairs: accuracy {_num(gold['accuracy']):.3f} over "
                   f"{gold['judgments']} judgments ({gold['pairs']} pairs planted).</p>")
        out.append(table(head, _rate_rows({"overall": results["overall"], **results.get("per_slice", {})})))
        raters = results.get("per_rater") or {}
        rows = [[w, r["judgments"], _num(r["gold_accuracy"]), _num(r["share_a"]), _num(r["kappa_vs_consensus"]),
                 "position bias" if r["position_bias"] else ""] for w, r in raters.items()]
        out.append("<h3>Raters</h3>" + table(["rater", "judgments", "gold accuracy", "share of A", "kappa vs consensus",
                                               "flag"], rows, ["fail" if r["position_bias"] else "" for r in raters.values()]))
    if judge is not None:
        out.append(f"<h3>LLM judge</h3><p>Judge <code>{esc(judge['judge'])}</code>, each pair in both orders; "
                   f"position-consistent on {_num(judge['consistency']):.3f} of pairs; gold accuracy "
                   f"{_num(judge['gold_accuracy']):.3f}.</p>")
        out.append(table(head, _rate_rows({"judge": judge["overall"]})))
        human = judge.get("human_agreement")
        if human:
            out.append(f"<p>Against the human consensus on {human['pairs']} pairs: kappa {_num(human['kappa']):.3f}, "
                       f"accuracy {_num(human['accuracy']):.3f}.</p>")
    out.append("</section>")
    return "".join(out)
