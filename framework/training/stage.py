"""The training stages of a run: train the task on the engine, or load the weights it was trained to."""

from __future__ import annotations

from pathlib import Path

from framework.errors import FrameworkError
from framework.stage import Run


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


class LoadTrainedWeights:
    """Without the train stage, before anything that needs a trained model (evaluate, pre-annotate,
    export, an audit check that scores with the model): the weights of ``checkpoint=``, else of
    the run dir's newest checkpoint."""

    name = "load weights"

    def applies(self, run: Run) -> bool:
        return not run.selected("train") and (run.selected("evaluate", "preannotate", "export") or run.audit_needs_model)

    def __call__(self, run: Run) -> None:
        from framework.training import latest_checkpoint, load_trained_weights

        source = Path(run.config.checkpoint) if run.config.checkpoint else latest_checkpoint(run.run_dir)
        if source is None:
            raise FrameworkError(
                "evaluate/export without the train stage needs trained weights: set checkpoint=PATH to a "
                "checkpoint directory (run_dir/checkpoints/step_...), or add train to stages"
            )
        load_trained_weights(run.require(run.task, "task"), source, what="checkpoint")

