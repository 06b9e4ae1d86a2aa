"""The pre-annotation stage: the trained model's predictions on unlabeled items, for annotators to correct."""

from __future__ import annotations

import logging

from framework.errors import FrameworkError
from framework.stage import Run

log = logging.getLogger(__name__)


class Preannotate:
    """``stages=[..., preannotate]``, on the main process: predict on ``data.unlabeled`` and write
    Label Studio pre-annotations to ``annotation/preannotations.json``."""

    name = "preannotate"

    def applies(self, run: Run) -> bool:
        return run.selected("preannotate") and run.is_main

    def __call__(self, run: Run) -> None:
        from framework.annotation.review_tasks import export_preannotations
        from framework.data.readers import read_manifest

        cfg, data = run.ctx.data, run.require(run.data, "data")
        if not cfg.unlabeled:
            raise FrameworkError("stage preannotate needs items to label: set data.unlabeled=<manifest of unlabeled items>")
        records, quarantined = read_manifest(data.root / cfg.unlabeled, root=data.root, split="unlabeled",
                                             format=cfg.unlabeled_format, slices=tuple(cfg.slices),
                                             allow_outside_root=cfg.allow_outside_root)
        for item in quarantined:
            log.warning("preannotate: skipped %s (%s): %s", item.source, item.reason, item.detail)
        predictions = run.call("predict", run.require(run.task, "task"), records, "unlabeled")
        path = export_preannotations(predictions, records, run.ctx.path("annotation", "preannotations.json"),
                                     label_type=data.label_type_for(run.modality.label_type),
                                     model_version=run.run_dir.name, root=data.root)
        log.info("pre-annotations for %d items: %s (import into Label Studio)", len(records), path)
