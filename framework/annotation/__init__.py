"""Annotation records, agreement, adjudication, label issues and Label Studio import/export.

Typical use::

    from framework.annotation import by_item, agreement_report, dawid_skene

    labels = by_item(bundle.annotations)          # item -> annotator -> label
    report = agreement_report(labels)             # kappa/alpha, per class, per annotator
    consensus = dawid_skene(labels).consensus     # item -> label + confidence
"""

from framework.annotation.adjudication import Consensus, DawidSkeneResult, dawid_skene, majority_vote
from framework.annotation.agreement import (
    AgreementReport,
    agreement_report,
    annotator_vs_consensus,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    overall_agreement,
    per_class_agreement,
)
from framework.annotation.label_issues import LabelIssues, find_label_issues
from framework.annotation.label_studio import import_label_studio, parse_result
from framework.annotation.records import AnnotationRecord, by_item, from_mapping
from framework.annotation.review_tasks import export_preannotations, export_review_tasks, items_needing_review

__all__ = [
    "AgreementReport",
    "AnnotationRecord",
    "Consensus",
    "DawidSkeneResult",
    "LabelIssues",
    "agreement_report",
    "annotator_vs_consensus",
    "by_item",
    "cohen_kappa",
    "dawid_skene",
    "export_preannotations",
    "export_review_tasks",
    "find_label_issues",
    "fleiss_kappa",
    "from_mapping",
    "import_label_studio",
    "items_needing_review",
    "krippendorff_alpha",
    "majority_vote",
    "overall_agreement",
    "parse_result",
    "per_class_agreement",
]
