"""The vision training loop, on the core engine.

It owns forward, loss and backward; the engine owns the device, precision, schedule, EMA,
checkpoints, resume, signals, logging and DDP. The benchmark (``bench/vision_throughput.py``)
times this same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from torch import nn
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:
    from framework.training import Engine


def train_classifier(
    engine: "Engine",
    task: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    *,
    eval_batch_size: int = 256,
    channels_last: bool = False,
    drop_last: bool = False,
) -> nn.Module:
    """Train ``task`` on ``train_set``, validating on ``val_set`` when the engine asks.

    Args:
        engine: The run's engine (step budget, schedule and validation cadence come from it).
        task: An :class:`~plugins.vision.task.ImageClassificationTask`.
        train_set: Items ``{"image": (3, H, W) uint8, "target": int64}``, augmented: a map-style
            dataset, or a shard stream of the same items (:func:`framework.train_stream`).
        val_set: Items of the same shape, not augmented; ``None`` skips validation.
        eval_batch_size: Batch size of validation.
        channels_last: Channels-last weights (CUDA convolutions).
        drop_last: Drop each epoch's incomplete batch (mixup needs even batch sizes).

    Returns:
        The module that was trained (possibly compiled or DDP-wrapped).
    """
    model = engine.setup(task, channels_last=channels_last)
    loader = engine.dataloader(train_set, shuffle=True, drop_last=drop_last)
    val_loader = engine.dataloader(val_set, batch_size=eval_batch_size, shuffle=False) if val_set else None

    def validate() -> Mapping[str, float]:
        # The engine calls this under eval() and no_grad; EMA weights when trainer.ema_decay is set.
        return validation_metrics(engine, engine.eval_model(model), val_loader)

    for batch in engine.steps(loader, validate=validate if val_loader is not None else None):
        with engine.autocast():
            out = model(batch)  # {"loss", "acc"}
        engine.backward(out["loss"], out)
    return model


def validation_metrics(engine: "Engine", model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Mean loss and accuracy over ``loader``: ``{"val_loss": .., "val_acc": ..}``.

    Under DDP each rank reads its shard of the validation set; the totals are summed over ranks,
    so every rank reports (and early-stops on) the same whole-set figures.
    """
    return engine.weighted_means(model, loader, {"val_loss": "loss", "val_acc": "acc"},
                                 weight=lambda batch: batch["target"].shape[0])
