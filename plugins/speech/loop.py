"""The speech training loop, on the core engine.

It owns forward, loss and backward; the engine owns the device, precision (bf16 on GPU),
accumulation, schedule, checkpoints, resume, signals, logging and DDP. The benchmark
(``bench/speech_throughput.py``) times this same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from plugins.speech.dataset import DurationBuckets, SpeechDataset, collate, collate_bucket

if TYPE_CHECKING:
    from framework.training import Engine


def train_asr(
    engine: "Engine",
    task: nn.Module,
    train_set: SpeechDataset | IterableDataset,
    val_set: SpeechDataset | None = None,
    *,
    eval_batch_size: int = 32,
    bucket_by_duration: bool = False,
    val_wer: Callable[[], float] | None = None,
) -> nn.Module:
    """Train ``task`` on ``train_set`` with teacher forcing, validating on ``val_set`` when the engine asks.

    Args:
        engine: The run's engine (step budget, schedule and validation cadence come from it).
        task: A :class:`~plugins.speech.task.SpeechRecognitionTask`.
        train_set: Utterances with their decoder sequences (augmented as configured): a
            :class:`SpeechDataset`, or a shard stream of the same items (:func:`framework.train_stream`).
        val_set: Utterances for validation loss and token accuracy; ``None`` skips validation.
        eval_batch_size: Batch size of validation.
        bucket_by_duration: Batches of similar-duration utterances (shuffled as whole batches).
        val_wer: Returns the val WER by decoding; called at each validation when given.

    Returns:
        The module that was trained (possibly compiled or DDP-wrapped).
    """
    model = engine.setup(task)
    if bucket_by_duration:
        loader = engine.dataloader(DurationBuckets(train_set, engine.cfg.batch_size), batch_size=1,
                                   collate_fn=collate_bucket)
    else:
        loader = engine.dataloader(train_set, shuffle=True, collate_fn=collate)
    val_loader = (engine.dataloader(val_set, batch_size=eval_batch_size, shuffle=False, collate_fn=collate)
                  if val_set is not None else None)

    def validate() -> Mapping[str, float]:
        # The engine calls this under eval() and no_grad; EMA weights when trainer.ema_decay is set.
        metrics = validation_metrics(engine, engine.eval_model(model), val_loader)
        if val_wer is not None:
            metrics["val_wer"] = val_wer()
        return metrics

    for batch in engine.steps(loader, validate=validate if val_loader is not None else None):
        with engine.autocast():
            out = model(batch)  # {"loss", "token_acc"}
        engine.backward(out["loss"], out)
    return model


def validation_metrics(engine: "Engine", model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Token-weighted loss and token accuracy over ``loader``: ``{"val_loss", "val_token_acc"}``,
    summed over DDP ranks so every rank reports the same whole-set figures."""
    return engine.weighted_means(model, loader, {"val_loss": "loss", "val_token_acc": "token_acc"},
                                 weight=lambda batch: (batch["labels"] != -100).sum())
