"""The text training loop (SFT and DPO alike), on the core engine.

It owns forward, loss and backward; the engine owns device, precision, accumulation, schedule,
checkpoints, resume, signals, logging, DDP and FSDP. ``bench/text_throughput.py`` times this
same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from torch import nn
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:
    from framework.training import Engine


def train_text(engine: "Engine", task: nn.Module, train_set: Dataset, collate: Callable[[list[Any]], Any],
               val_set: Dataset | None = None, *, eval_batch_size: int = 64) -> nn.Module:
    """Train ``task`` (an :class:`~plugins.text.task.SFTTask` or
    :class:`~plugins.text.task.DPOTask`) on ``train_set``, validating on ``val_set``.

    Returns:
        The module that was trained (possibly compiled, DDP- or FSDP-wrapped).
    """
    model = engine.setup(task)
    loader = engine.dataloader(train_set, shuffle=True, collate_fn=collate)
    val_loader = (engine.dataloader(val_set, batch_size=eval_batch_size, shuffle=False, collate_fn=collate)
                  if val_set is not None and len(val_set) else None)

    def validate() -> Mapping[str, float]:
        # The engine calls this under eval() and no_grad; EMA weights when trainer.ema_decay is set.
        return validation_metrics(engine, engine.eval_model(model), val_loader)

    for batch in engine.steps(loader, validate=validate if val_loader is not None else None):
        with engine.autocast():
            out = model(batch)  # {"loss", "tokens", and the DPO rewards}
        engine.backward(out["loss"], out)
    return model


def validation_metrics(engine: "Engine", model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Mean loss (``val_loss``) and, for DPO, reward accuracy and margin over ``loader``, per batch,
    summed over DDP/FSDP ranks so every rank reports the same whole-set figures. Every rank runs
    the forward passes (FSDP needs them all)."""
    return engine.weighted_means(model, loader, {"val_loss": "loss", "val_reward_accuracy": "rewards/accuracy",
                                                 "val_reward_margin": "rewards/margin"})
