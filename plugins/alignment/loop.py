"""The alignment training loop, on the core engine.

It owns forward, loss and backward; the engine owns the device, precision, schedule, EMA,
checkpoints, resume, signals, logging and DDP. Under DDP every rank's batch must have the same
size (the loss gathers features from every rank), so the last incomplete batch is dropped there.
The benchmark (``bench/alignment_throughput.py``) times this same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:
    from framework.training import Engine


def train_alignment(engine: "Engine", task: nn.Module, train_set: Dataset, val_set: Dataset | None = None, *,
                    eval_batch_size: int = 256, num_pairs: int = 0,
                    param_groups: list[dict[str, Any]] | None = None) -> np.ndarray:
    """Train ``task`` (an :class:`~plugins.alignment.task.AlignmentTask`) on ``train_set``.

    Args:
        engine: The run's engine (step budget, schedule and validation cadence come from it).
        task: The dual encoder with its loss.
        train_set: Items ``{"image", "input_ids", "attention_mask", "pair"}``, augmented, one caption each.
        val_set: Items of the same shape, not augmented; ``None`` skips validation.
        eval_batch_size: Batch size of validation (its in-batch negatives: the loss depends on it).
        num_pairs: With ``> 0``, each pair's margin over its hardest in-batch negative is averaged
            over every step that drew it (summed on the device, then over DDP ranks): the training
            dynamics the misalignment audit reads.
        param_groups: Optimizer groups with their own learning rates (per-tower ``lr_scale``);
            ``None``: the engine's default groups at ``trainer.lr``.

    Returns:
        The pair margins, ``(num_pairs,)`` float64 indexed like the dataset's ``pair``, NaN for
        pairs never drawn (empty when ``num_pairs`` is 0). The task is trained in place.
    """
    model = engine.setup(task, param_groups=param_groups)
    loader = engine.dataloader(train_set, shuffle=True, drop_last=engine.world_size > 1)
    val_loader = engine.dataloader(val_set, batch_size=eval_batch_size, shuffle=False,
                                   drop_last=engine.world_size > 1) if val_set else None

    def validate() -> Mapping[str, float]:
        # The engine calls this under eval() and no_grad; EMA weights when trainer.ema_decay is set.
        return validation_metrics(engine, engine.eval_model(model), val_loader)

    sums = torch.zeros(2, max(num_pairs, 0), device=engine.device)  # (margin sum, draws) per pair
    for batch in engine.steps(loader, validate=validate if val_loader is not None else None):
        with engine.autocast():
            out = model(batch)  # {"loss", "loss_i2t", "loss_t2i", "acc", "pair_margin", "logit_scale"}
        if num_pairs > 0:  # index_add_ on the device: no host sync per step
            pairs = batch["pair"].to(sums.device)
            sums[0].index_add_(0, pairs, out["pair_margin"].float())
            sums[1].index_add_(0, pairs, torch.ones_like(pairs, dtype=sums.dtype))
        engine.backward(out["loss"], out)
    if num_pairs <= 0:
        return np.zeros(0, dtype=np.float64)
    from framework.training.distributed import all_reduce_sum

    total, draws = all_reduce_sum(sums).cpu().double().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(draws > 0, total / draws, np.nan)


def validation_metrics(engine: "Engine", model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Mean contrastive loss and in-batch image-to-text accuracy over ``loader``:
    ``{"val_loss": .., "val_acc": ..}``, summed over DDP ranks."""
    return engine.weighted_means(model, loader, {"val_loss": "loss", "val_acc": "acc"},
                                 weight=lambda batch: batch["input_ids"].shape[0])
