"""The training stages of a run: train the task on the engine, or load the weights it was trained to."""

from __future__ import annotations

import logging
from pathlib import Path

from framework.errors import FrameworkError, first_line
from framework.stage import Run

log = logging.getLogger(__name__)


class Train:
    """``stages=[train, ...]``: the modality's loop on an :class:`~framework.training.Engine`
    (checkpoints, resume, signals); afterwards ``ctx.engine`` is the engine that trained the task."""

    name = "train"

    def applies(self, run: Run) -> bool:
        return run.selected("train")

    def __call__(self, run: Run) -> None:
        from framework.training import Engine

        with Engine(run.config.trainer, run.info, events=run.plugins, seed=run.ctx.seed) as engine:
            run.call("train", engine, run.require(run.task, "task"), run.require(run.data, "data"))
            run.ctx.engine = engine


class LoadTrainedWeights:
    """Without the train stage, before anything that needs a trained model (evaluate, pre-annotate,
    export, an audit check that scores with the model): the weights of ``checkpoint=``, else of
    the run dir's newest checkpoint."""

    name = "load weights"

    def applies(self, run: Run) -> bool:
        return not run.selected("train") and (run.selected("evaluate", "preannotate", "export") or run.audit_needs_model)

    def __call__(self, run: Run) -> None:
        from framework.training import latest_checkpoint

        source = Path(run.config.checkpoint) if run.config.checkpoint else latest_checkpoint(run.run_dir)
        if source is None:
            raise FrameworkError(
                "evaluate/export without the train stage needs trained weights: set checkpoint=PATH to a "
                "checkpoint directory (run_dir/checkpoints/step_...), or add train to stages"
            )
        ema = load_trained_weights(run.require(run.task, "task"), source, what="checkpoint",
                                   hint="; was it trained with another model config?")
        log.info("loaded %sweights from %s", "EMA " if ema else "", source)


def load_trained_weights(task: object, source: Path, *, what: str, hint: str = "") -> bool:
    """Load a checkpoint's or export's weights into ``task`` (verified, finite); True for EMA weights.

    Raises:
        FrameworkError: The weights do not fit the task (missing/unexpected keys or shapes),
            naming ``what=source``.
    """
    from framework.training import load_model_weights

    try:
        return bool(load_model_weights(task, source))  # type: ignore[arg-type]
    except RuntimeError as err:
        raise FrameworkError(f"{what}={source}: its weights do not fit this model "
                             f"({first_line(err, type(err).__name__)}){hint}") from None
