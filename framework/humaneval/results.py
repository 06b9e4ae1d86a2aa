"""``python -m framework.humaneval import RUN EXPORT.json``: the ratings, read back and summarised.

From the trained model's side of every model pair: win, tie and loss rates with 95% bootstrap
confidence intervals (pairs resampled, so several raters of one pair are not counted as independent
evidence), overall and per slice; rater agreement (Cohen's kappa for two raters, else Fleiss' or
Krippendorff's, :mod:`framework.annotation.agreement`); accuracy on the gold pairs, overall and per
rater; and position bias: a rater whose share of ``A`` among non-tie verdicts is further than
:data:`POSITION_BIAS` from one half (sides are random, so a fair rater is near 0.5) over at least
:data:`MIN_CHOICES` verdicts is flagged.

The run's metrics gain ``human/win_rate`` (usable in ``success:``), ``human/tie_rate``,
``human/loss_rate``, ``human/win_rate_low`` / ``_high`` (the interval), ``human/pairs``,
``human/judgments``, ``human/agreement``, ``human/gold_accuracy``, ``human/flagged_raters`` and
``human/<field>=<value>/win_rate`` per slice; ``summary.json`` and ``report.html`` are rewritten.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from framework.errors import FrameworkError
from framework.humaneval.label_studio import Judgment, read_export
from framework.humaneval.pairs import GOOD, HUMANEVAL_DIR, RESULTS_JSON, TRAINED, Key, Pair, key_path

PREFIX = "human/"
JUDGMENTS_JSON = "judgments.json"
POSITION_BIAS = 0.3  # |share of A - 0.5| beyond this flags a rater
MIN_CHOICES = 10  # non-tie verdicts a rater needs before being judged for position bias
BOOTSTRAP = 2000
OUTCOMES = ("win", "tie", "loss")


def outcome(pair: Pair, verdict: str) -> str:
    """``win``, ``tie`` or ``loss`` for the trained model (model pairs) given a verdict on sides."""
    if verdict == "Tie":
        return "tie"
    return "win" if verdict == pair.side_of(TRAINED) else "loss"


def rates(per_pair: Mapping[str, Sequence[str]], seed: int = 0, n_boot: int = BOOTSTRAP) -> dict[str, float]:
    """Win/tie/loss rates over every judgment, with 95% percentile intervals from resampling pairs.

    Args:
        per_pair: Pair id -> the outcomes its raters gave.
    """
    groups = [list(v) for v in per_pair.values() if v]
    if not groups:
        return {}
    counts = np.array([[g.count(o) for o in OUTCOMES] for g in groups], dtype=float)  # (pairs, 3)
    total = counts.sum()
    out: dict[str, float] = {"pairs": float(len(groups)), "judgments": float(total)}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    boot = counts[draws].sum(axis=1)  # (n_boot, 3)
    shares = boot / boot.sum(axis=1, keepdims=True)
    for j, name in enumerate(OUTCOMES):
        out[f"{name}_rate"] = float(counts[:, j].sum() / total)
        out[f"{name}_rate_low"], out[f"{name}_rate_high"] = (float(x) for x in np.percentile(shares[:, j], [2.5, 97.5]))
    return out


def position_bias(judgments: Sequence[Judgment], pairs: Mapping[str, Pair]) -> dict[str, dict[str, Any]]:
    """Per rater over model pairs: non-tie verdicts, share of ``A``, a binomial test p-value, flag."""
    from scipy.stats import binomtest

    picks: dict[str, list[str]] = defaultdict(list)
    for j in judgments:
        if pairs[j.pair_id].kind == "model" and j.verdict != "Tie":
            picks[j.annotator].append(j.verdict)
    out = {}
    for who, verdicts in sorted(picks.items()):
        n, a = len(verdicts), verdicts.count("A")
        share = a / n
        flagged = n >= MIN_CHOICES and abs(share - 0.5) > POSITION_BIAS
        out[who] = {"choices": n, "share_a": share, "p_value": float(binomtest(a, n, 0.5).pvalue), "flagged": flagged}
    return out


def gold_accuracy(judgments: Sequence[Judgment], pairs: Mapping[str, Pair]) -> tuple[float, dict[str, float]]:
    """Share of gold verdicts that picked the good side: overall, and per rater."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for j in judgments:
        pair = pairs[j.pair_id]
        if pair.kind == "gold":
            hits[j.annotator].append(j.verdict == pair.side_of(GOOD))
    every = [h for v in hits.values() for h in v]
    return (float(np.mean(every)) if every else math.nan), {w: float(np.mean(v)) for w, v in sorted(hits.items())}


def summarise(key: Key, judgments: Sequence[Judgment], seed: int = 0) -> dict[str, Any]:
    """Everything the import reports, as plain data (also written as ``results.json``)."""
    from framework.annotation.agreement import agreement_report

    unknown = sorted({j.pair_id for j in judgments} - set(key.pairs))
    if unknown:
        raise FrameworkError(f"the export has pairs the key does not know ({', '.join(unknown[:3])}...): it belongs to "
                             f"another export; import the tasks of {key.run}/humaneval/annotate/tasks.json")
    pairs = key.pairs
    model = [j for j in judgments if pairs[j.pair_id].kind == "model"]
    per_pair: dict[str, list[str]] = defaultdict(list)
    for j in model:
        per_pair[j.pair_id].append(outcome(pairs[j.pair_id], j.verdict))
    overall = rates(per_pair, seed)
    slices: dict[str, dict[str, float]] = {}
    fields = sorted({f"{k}={v}" for p in pairs.values() for k, v in p.slices.items()})
    for name in fields:
        field, value = name.split("=", 1)
        sub = {pid: v for pid, v in per_pair.items() if pairs[pid].slices.get(field) == value}
        if sub:
            slices[name] = rates(sub, seed)
    labels = {pid: {} for pid in {j.pair_id for j in judgments}}
    for j in judgments:
        labels[j.pair_id][j.annotator] = j.verdict
    agreement = agreement_report(labels)
    gold, gold_per_rater = gold_accuracy(judgments, pairs)
    bias = position_bias(judgments, pairs)
    raters = sorted({j.annotator for j in judgments})
    per_rater = {w: {"judgments": sum(j.annotator == w for j in judgments),
                     "gold_accuracy": gold_per_rater.get(w, math.nan),
                     "share_a": bias.get(w, {}).get("share_a", math.nan),
                     "position_bias": bool(bias.get(w, {}).get("flagged", False)),
                     "kappa_vs_consensus": agreement.per_annotator.get(w, {}).get("kappa", math.nan)} for w in raters}
    return {"baseline": key.baseline, "split": key.split, "interface": key.interface, "gold_rate": key.gold_rate,
            "overall": overall, "per_slice": slices,
            "agreement": {"method": agreement.method, "value": agreement.value, "items": agreement.items,
                          "raters": agreement.annotators},
            "gold": {"accuracy": gold, "pairs": sum(p.kind == "gold" for p in pairs.values()),
                     "judgments": sum(pairs[j.pair_id].kind == "gold" for j in judgments)},
            "position_bias": bias, "per_rater": per_rater,
            "flagged": [w for w, b in bias.items() if b["flagged"]],
            "verdicts": dict(Counter(j.verdict for j in judgments))}


def metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """The ``human/*`` metrics of a :func:`summarise` result."""
    overall = results.get("overall") or {}
    out = {f"{PREFIX}{k}": float(v) for k, v in overall.items()}
    for name, row in (results.get("per_slice") or {}).items():
        if "win_rate" in row:
            out[f"{PREFIX}{name}/win_rate"] = float(row["win_rate"])
    out[f"{PREFIX}agreement"] = float(results["agreement"]["value"])
    out[f"{PREFIX}gold_accuracy"] = float(results["gold"]["accuracy"])
    out[f"{PREFIX}flagged_raters"] = float(len(results.get("flagged") or []))
    return out


def import_annotations(run_dir: Path, export_path: Path, seed: int = 0) -> dict[str, Any]:
    """Read a Label Studio export against the run's key, write the results into the run."""
    from framework.humaneval.run_files import update_run

    run_dir = Path(run_dir)
    if not Path(export_path).is_file():
        raise FrameworkError(f"{export_path}: no such Label Studio export (Export -> JSON in the project)")
    key = Key.read(key_path(run_dir))
    try:
        export = json.loads(Path(export_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FrameworkError(f"{export_path}:{exc.lineno}: not JSON ({exc.msg}); export the project as JSON") from None
    if not isinstance(export, list):
        raise FrameworkError(f"{export_path}: a Label Studio JSON export is a list of tasks; this is a {type(export).__name__}")
    judgments = read_export(export, Path(export_path))
    if not judgments:
        raise FrameworkError(f"{export_path}: no completed annotation to read")
    results = summarise(key, judgments, seed)
    folder = run_dir / HUMANEVAL_DIR
    (folder / JUDGMENTS_JSON).write_text(json.dumps([j.__dict__ for j in judgments], indent=1), encoding="utf-8")
    update_run(run_dir, folder / RESULTS_JSON, results, metrics(results), PREFIX)
    return results
