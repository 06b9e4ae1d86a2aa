"""Inter-annotator agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, and breakdowns.

All functions take labels as ``item_id -> annotator -> label`` (see
:func:`framework.annotation.records.by_item`). Only items with two or more labels say anything
about agreement; the others are ignored.

Which statistic :func:`agreement_report` uses:

* **Cohen's kappa** when exactly two annotators labelled every shared item;
* **Fleiss' kappa** when every item has the same number of labels (raters may differ per item);
* **Krippendorff's alpha** (nominal) when the number of labels per item varies (missing labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Hashable, Mapping

import numpy as np

ItemLabels = Mapping[str, Mapping[str, Hashable]]


def multi_annotated(item_labels: ItemLabels) -> dict[str, Mapping[str, Hashable]]:
    """The items with labels from two or more annotators."""
    return {item: labels for item, labels in item_labels.items() if len(labels) >= 2}


def _categories(item_labels: ItemLabels) -> list[Hashable]:
    # Sorted by repr so the order is stable whatever the label types are.
    return sorted({lab for labels in item_labels.values() for lab in labels.values()}, key=repr)


def cohen_kappa(a: list[Hashable], b: list[Hashable]) -> float:
    """Cohen's kappa of two aligned label lists (scikit-learn); ``nan`` when undefined.

    Kappa is undefined when chance agreement is 1 (both annotators always use one label); if they
    also agree on every item, 1.0 is returned, since there is no disagreement to learn.
    """
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return math.nan
    sa, sb = [repr(x) for x in a], [repr(x) for x in b]
    if len(set(sa) | set(sb)) == 1:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohen_kappa_score(sa, sb))


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an ``(items, categories)`` count table with equal row sums.

    Args:
        counts: ``counts[i, j]`` = number of annotators who gave item ``i`` category ``j``;
            every row sums to the same number of raters ``n >= 2``.

    Returns:
        Kappa, or 1.0 when every label is the same category (no disagreement), ``nan`` if empty.
    """
    counts = np.asarray(counts, dtype=float)  # (N, K)
    if counts.size == 0:
        return math.nan
    n = counts.sum(axis=1)
    if not np.allclose(n, n[0]) or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of labels for every item")
    n = n[0]
    p_j = counts.sum(axis=0) / counts.sum()  # (K,) share of each category
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))  # (N,) agreement per item
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    if math.isclose(p_e, 1.0):
        return 1.0 if math.isclose(p_bar, 1.0) else math.nan
    return float((p_bar - p_e) / (1 - p_e))


def count_table(item_labels: ItemLabels, categories: list[Hashable] | None = None) -> np.ndarray:
    """``(items, categories)`` counts of labels, for Fleiss' kappa."""
    cats = categories or _categories(item_labels)
    index = {c: j for j, c in enumerate(cats)}
    table = np.zeros((len(item_labels), len(cats)))
    for i, labels in enumerate(item_labels.values()):
        for lab in labels.values():
            table[i, index[lab]] += 1
    return table


def krippendorff_alpha(item_labels: ItemLabels) -> float:
    """Krippendorff's alpha (nominal) with the ``krippendorff`` package; missing labels allowed."""
    import krippendorff

    annotators = sorted({a for labels in item_labels.values() for a in labels})
    cats = _categories(item_labels)
    if len(cats) <= 1:
        return 1.0 if cats else math.nan
    code = {c: float(j) for j, c in enumerate(cats)}
    data = np.full((len(annotators), len(item_labels)), np.nan)  # (annotators, items)
    row = {a: r for r, a in enumerate(annotators)}
    for col, labels in enumerate(item_labels.values()):
        for who, lab in labels.items():
            data[row[who], col] = code[lab]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def choose_method(item_labels: ItemLabels) -> str:
    """``"cohen"``, ``"fleiss"`` or ``"krippendorff"`` for these (multi-annotated) items."""
    annotators = {a for labels in item_labels.values() for a in labels}
    sizes = {len(labels) for labels in item_labels.values()}
    if len(annotators) == 2 and sizes == {2}:
        return "cohen"
    if len(sizes) == 1:
        return "fleiss"
    return "krippendorff"


def overall_agreement(item_labels: ItemLabels, method: str | None = None) -> tuple[str, float]:
    """``(method, value)`` over the multi-annotated items; ``("none", nan)`` when there are none."""
    items = multi_annotated(item_labels)
    if not items:
        return "none", math.nan
    method = method or choose_method(items)
    if method == "cohen":
        first, second = sorted({a for labels in items.values() for a in labels})
        return method, cohen_kappa([v[first] for v in items.values()], [v[second] for v in items.values()])
    if method == "fleiss":
        return method, fleiss_kappa(count_table(items))
    return "krippendorff", krippendorff_alpha(items)


def per_class_agreement(item_labels: ItemLabels) -> dict[str, float]:
    """Agreement on each class taken alone (label == class vs not), with the overall method.

    A class with low agreement is one the guidelines do not define clearly.
    """
    items = multi_annotated(item_labels)
    method = choose_method(items) if items else None
    out = {}
    for cat in _categories(items):
        binary = {i: {a: lab == cat for a, lab in labels.items()} for i, labels in items.items()}
        out[str(cat)] = overall_agreement(binary, method)[1]
    return out


def annotator_vs_consensus(item_labels: ItemLabels, consensus: Mapping[str, Hashable]) -> dict[str, dict[str, float]]:
    """Each annotator's Cohen's kappa and raw agreement against the consensus labels.

    Returns:
        ``annotator -> {"kappa", "agreement", "items"}`` over the items both have labels for.
    """
    pairs: dict[str, tuple[list, list]] = {}
    for item, labels in item_labels.items():
        if item not in consensus:
            continue
        for who, lab in labels.items():
            mine, ref = pairs.setdefault(who, ([], []))
            mine.append(lab)
            ref.append(consensus[item])
    return {
        who: {"kappa": cohen_kappa(mine, ref), "agreement": float(np.mean([m == r for m, r in zip(mine, ref)])),
              "items": float(len(mine))}
        for who, (mine, ref) in sorted(pairs.items())
    }


def pairwise_kappa(item_labels: ItemLabels) -> dict[str, dict[str, float]]:
    """Cohen's kappa of every pair of annotators over the items both labelled.

    Returns:
        ``annotator -> other annotator -> kappa`` (symmetric; ``nan`` for pairs without shared
        items, 1.0 on the diagonal).
    """
    annotators = sorted({a for labels in item_labels.values() for a in labels})
    matrix: dict[str, dict[str, float]] = {a: {} for a in annotators}
    for i, a in enumerate(annotators):
        matrix[a][a] = 1.0
        for b in annotators[i + 1:]:
            shared = [labels for labels in item_labels.values() if a in labels and b in labels]
            kappa = cohen_kappa([v[a] for v in shared], [v[b] for v in shared])
            matrix[a][b] = matrix[b][a] = kappa
    return matrix


def outlier_annotators(per_annotator: Mapping[str, Mapping[str, float]], margin: float) -> dict[str, str]:
    """Annotators whose kappa against the consensus is more than ``margin`` below the median of
    the others' (three or more annotators only), with the reason in words."""
    kappas = {a: m["kappa"] for a, m in per_annotator.items() if not math.isnan(m["kappa"])}
    if len(kappas) < 3:
        return {}
    out = {}
    for who, kappa in sorted(kappas.items()):
        others = float(np.median([k for a, k in kappas.items() if a != who]))
        if kappa < others - margin:
            out[who] = (f"annotator {who}: kappa vs consensus {kappa:.2f}, far below the others' median "
                        f"{others:.2f} (margin {margin:.2f}); review their labels and guidelines training")
    return out


@dataclass
class AgreementReport:
    """Agreement figures for the consistency gate and the data card.

    Attributes:
        method: ``cohen``, ``fleiss``, ``krippendorff``, or ``none`` (no multi-annotated items).
        value: The statistic (kappa or alpha); ``nan`` when undefined.
        items: Number of items with two or more labels.
        annotators: Number of distinct annotators on those items.
        per_class: Class -> agreement on that class alone.
        per_annotator: Annotator -> kappa/agreement/items against the majority-vote consensus.
        pairwise: Annotator -> annotator -> Cohen's kappa over the items both labelled.
    """

    method: str
    value: float
    items: int
    annotators: int
    per_class: dict[str, float] = field(default_factory=dict)
    per_annotator: dict[str, dict[str, float]] = field(default_factory=dict)
    pairwise: dict[str, dict[str, float]] = field(default_factory=dict)


def agreement_report(item_labels: ItemLabels) -> AgreementReport:
    """Overall, per-class, per-annotator (against the consensus) and pairwise agreement of the
    multi-annotated items."""
    from framework.annotation.adjudication import majority_vote

    items = multi_annotated(item_labels)
    method, value = overall_agreement(items)
    consensus = {i: c.label for i, c in majority_vote(items).items()}
    return AgreementReport(
        method=method,
        value=value,
        items=len(items),
        annotators=len({a for labels in items.values() for a in labels}),
        per_class=per_class_agreement(items) if items else {},
        per_annotator=annotator_vs_consensus(items, consensus) if items else {},
        pairwise=pairwise_kappa(items) if items else {},
    )
