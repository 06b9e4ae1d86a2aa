"""The training stages of a run: train the task on the engine, or load the weights it was trained
to; after sharded training, gather the whole model once for rank 0's stages."""

from __future__ import annotations

from pathlib import Path

import logging

from framework.errors import FrameworkError
from framework.stage import STARTING_WEIGHTS, TRAINED_WEIGHTS, Run

log = logging.getLogger(__name__)


class Train:
    """``stages=[train, ...]``: the modality's loop on an :class:`~framework.training.Engine`
    (checkpoints, resume, signals); afterwards ``ctx.engine`` is the engine that trained the task."""

    name = "train"

    def applies(self, run: Run) -> bool:
        return run.selected("train")

    def __call__(self, run: Run) -> None:
        from framework.data.sources import training_view
        from framework.data.version import data_fingerprint
        from framework.training import Engine

        data = run.require(run.data, "data")
        with Engine(run.config.trainer, run.info, events=run.plugins, seed=run.ctx.seed,
                    data_fingerprint=data_fingerprint(data)) as engine:
            run.call("train", engine, run.require(run.task, "task"), training_view(data, run.ctx.seed))
            run.ctx.engine = engine
        run.result.weights = TRAINED_WEIGHTS
        if engine.strategy.shards_model:
            run.sharded_task = engine.task


class GatherWeights:
    """Under FSDP2, after training, when a stage that runs on rank 0 alone needs the whole model
    (an audit check that scores with it, pre-annotation, export): the full weights are gathered
    once to rank 0's CPU into a copy of the task built for it (on the meta device when the
    modality can), which becomes ``run.task`` there. Every rank takes part; evaluation keeps
    using the sharded task on every rank."""

    name = "gather weights"

    def applies(self, run: Run) -> bool:
        return run.sharded_task is not None and (run.audit_needs_model or run.selected("preannotate", "export"))

    def __call__(self, run: Run) -> None:
        from framework.stage import build_task
        from framework.training.fsdp import full_weights, unsharded_copy

        sharded = run.require(run.sharded_task, "sharded_task")
        full = full_weights(sharded)  # a collective; empty except on rank 0
        if run.is_main:
            template = build_task(run, meta=run.modality.meta_init)
            run.task = unsharded_copy(template, sharded, full)


class LoadTrainedWeights:
    """Without the train stage, before anything that needs a model (evaluate, pre-annotate, export,
    an audit check that scores with the model): the weights of ``checkpoint=``, else of the run
    dir's newest checkpoint, else, for evaluate and pre-annotate only, the configured model as
    built (a released model's own weights, or an untrained reference), labelled
    :data:`~framework.stage.STARTING_WEIGHTS` in the report and ``summary.json``."""

    name = "load weights"

    def applies(self, run: Run) -> bool:
        return not run.selected("train") and (run.selected("evaluate", "preannotate", "export") or run.audit_needs_model)

    def __call__(self, run: Run) -> None:
        from framework.training import latest_checkpoint, load_trained_weights

        source = Path(run.config.checkpoint) if run.config.checkpoint else latest_checkpoint(run.run_dir)
        if source is not None:
            load_trained_weights(run.require(run.task, "task"), source, what="checkpoint")
            run.result.weights = f"checkpoint {source}"
            return
        if run.selected("export"):
            raise FrameworkError(
                "export without the train stage needs trained weights: set checkpoint=PATH to a checkpoint "
                "directory (run_dir/checkpoints/step_...), or add train to stages (stages=[evaluate] alone "
                "evaluates the starting weights)"
            )
        run.result.weights = STARTING_WEIGHTS
        log.info("no train stage and no checkpoint: evaluating the configured model's %s", STARTING_WEIGHTS)
