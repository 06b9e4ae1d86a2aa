"""The training stages of a run: train the task on the engine, or load the weights it was trained to."""

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
