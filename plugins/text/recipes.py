"""The text modality's two recipes: SFT on chats and DPO on preference pairs.

As torchtune ships one recipe per objective, each objective here is one class that owns
everything that differs between them: the data format it reads, how it tokenizes a record, the
task (model + loss) it builds, its training datasets and its loss figures in evaluation. The
modality picks one recipe per run from ``modality.method`` (:func:`recipe_for`) and never asks
which one it holds; what both share (loading, generation, probes, slices, export) stays in
:class:`~plugins.text.modality.TextModality`.

A new objective is a :class:`TextRecipe` subclass added to :data:`RECIPES` under its method name.
"""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
from torch import nn

from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError
from framework.training.distributed import broadcast_object
from plugins.text import chat
from plugins.text import evaluate as text_eval
from plugins.text.config import TextConfig
from plugins.text.loop import train_text
from plugins.text.model import is_peft
from plugins.text.packing import Collator, PairCollator, PairDataset
from plugins.text.task import DPOTask, SFTTask

if TYPE_CHECKING:
    from framework.modality import RunContext
    from framework.training import Engine
    from plugins.text.config import TextModelConfig
    from plugins.text.modality import TextModality

    Ctx = RunContext[TextConfig, TextModelConfig]

log = logging.getLogger(__name__)


class TextRecipe(abc.ABC):
    """One training objective of the text modality (see the module docstring).

    Class attributes:
        method: The ``modality.method`` value that selects this recipe.
        data_format: The ``data.format`` its records are read with (``chat``, ``preference``).
        label_type: The bundle's label type (annotation export, the audit's coverage gate).
        needs: The record field every record must have, and what it is, for the error message.
        modality_hint: What to use instead when the data does not fit, for the error message.
    """

    method: ClassVar[str]
    data_format: ClassVar[str]
    label_type: ClassVar[str]
    needs: ClassVar[tuple[str, str]]
    modality_hint: ClassVar[str]

    def check_records(self, bundle: DataBundle) -> None:
        """Called by ``load_data``; raises a one-line error naming the file when a record lacks
        what this recipe trains on."""
        field, what = self.needs
        for record in bundle.records():
            if field not in record.fields:
                raise FrameworkError(
                    f"{record.source}: modality.method={self.method} needs {what}; this data has none. "
                    f"Use {self.modality_hint} with matching data.train/val/test")

    @abc.abstractmethod
    def encode(self, tokenizer: Any, template: str, records: Sequence[Record], cfg: TextConfig) -> dict[str, Any]:
        """Called once per split by ``load_data``; each record's tokenization by record id (an
        :class:`~plugins.text.chat.Encoded`, or a ``(chosen, rejected)`` pair of them)."""

    @abc.abstractmethod
    def build_task(self, model: nn.Module, cfg: TextConfig) -> nn.Module:
        """Called by ``build_task``; the loaded causal LM with this recipe's loss."""

    @abc.abstractmethod
    def train(self, modality: "TextModality", ctx: "Ctx", engine: "Engine", task: nn.Module,
              data: DataBundle) -> None:
        """Called by ``train``; builds this recipe's datasets and runs the text loop on them."""

    @abc.abstractmethod
    def loss_metrics(self, modality: "TextModality", ctx: "Ctx", task: nn.Module, data: DataBundle,
                     split: str) -> dict[str, float]:
        """Called by ``evaluate`` per split; this recipe's loss figures of ``task.model``."""


class SFTRecipe(TextRecipe):
    """Chat SFT: assistant-only next-token loss on packed conversations; loss and perplexity."""

    method: ClassVar[str] = "sft"
    data_format: ClassVar[str] = "chat"
    label_type: ClassVar[str] = "text"
    needs: ClassVar[tuple[str, str]] = ("messages", "chat messages")
    modality_hint: ClassVar[str] = "+modality=text"

    def encode(self, tokenizer: Any, template: str, records: Sequence[Record], cfg: TextConfig) -> dict[str, Any]:
        return {r.id: chat.encode_chat(tokenizer, r.fields["messages"], template, cfg.max_length,
                                       assistant_only=cfg.sft.assistant_only, mask_source=cfg.sft.mask_source)
                for r in records}

    def build_task(self, model: nn.Module, cfg: TextConfig) -> nn.Module:
        return SFTTask(model)

    def train(self, modality: "TextModality", ctx: "Ctx", engine: "Engine", task: nn.Module,
              data: DataBundle) -> None:
        cfg = ctx.modality
        train_set = modality.sft_dataset(ctx, data, "train", cfg.sft.packing)
        val_set = modality.sft_dataset(ctx, data, "val", packing=False) if data.records("val") else None
        log.info("SFT: %d examples in %d rows of up to %d tokens (packing %s)", len(data.records("train")),
                 len(train_set), cfg.max_length, "on" if cfg.sft.packing else "off")
        train_text(engine, task, train_set, Collator(modality.tokenizer(ctx).pad_token_id), val_set,
                   eval_batch_size=cfg.eval_batch_size)

    def loss_metrics(self, modality: "TextModality", ctx: "Ctx", task: nn.Module, data: DataBundle,
                     split: str) -> dict[str, float]:
        return text_eval.loss_and_perplexity(task.model, modality.sft_dataset(ctx, data, split, False),
                                             Collator(modality.tokenizer(ctx).pad_token_id),
                                             ctx.modality.eval_batch_size)


def pair_kind(record: Record) -> str | None:
    """``trap`` for sycophancy traps, ``gold`` for gold pairs, else ``None``."""
    if record.fields.get("trap"):
        return "trap"
    if record.fields.get("gold"):
        return "gold"
    return None


class DPORecipe(TextRecipe):
    """DPO (sigmoid, IPO, hinge) on preference pairs against the adapters-disabled or precomputed
    reference; preference accuracy and margin, with traps and gold pairs apart."""

    method: ClassVar[str] = "dpo"
    data_format: ClassVar[str] = "preference"
    label_type: ClassVar[str] = "preference"  # pairs keep their answers in chosen/rejected
    needs: ClassVar[tuple[str, str]] = ("chosen", "preference pairs (prompt/chosen/rejected)")
    modality_hint: ClassVar[str] = "+modality=text_dpo (or data.format=preference)"

    def encode(self, tokenizer: Any, template: str, records: Sequence[Record], cfg: TextConfig) -> dict[str, Any]:
        def side(record: Record, answer: str) -> chat.Encoded:
            return chat.encode_pair_side(tokenizer, record.fields["prompt"], record.fields[answer], template,
                                         cfg.max_length)

        return {r.id: (side(r, "chosen"), side(r, "rejected")) for r in records}

    def build_task(self, model: nn.Module, cfg: TextConfig) -> nn.Module:
        reference = cfg.dpo.reference
        if reference == "auto":
            reference = "adapters_off" if is_peft(model) else "precomputed"
        if reference == "adapters_off" and not is_peft(model):
            raise FrameworkError("modality.dpo.reference=adapters_off needs LoRA (model.lora.rank > 0); "
                                 "use modality.dpo.reference=precomputed for full fine-tuning")
        if reference not in ("adapters_off", "precomputed"):
            raise FrameworkError(f"modality.dpo.reference={reference!r} is unknown; use auto, adapters_off or precomputed")
        return DPOTask(model, beta=cfg.dpo.beta, loss_type=cfg.dpo.loss, label_smoothing=cfg.dpo.label_smoothing,
                       reference=reference)

    def train(self, modality: "TextModality", ctx: "Ctx", engine: "Engine", task: nn.Module,
              data: DataBundle) -> None:
        cfg = ctx.modality
        pad = modality.tokenizer(ctx).pad_token_id
        has_val = bool(data.records("val"))
        train_ref = val_ref = None
        if task.reference == "precomputed":
            def scores(split: str) -> list[tuple[float, float]]:
                return precompute_reference(task, modality.pair_dataset(ctx, data, split), pad, engine.device,
                                            cfg.eval_batch_size)

            # Before FSDP2 shards the task, only rank 0 holds its weights (the others may have built
            # it on the meta device): rank 0 scores the pairs and every rank receives the scores.
            scoring = engine.is_main or not engine.fsdp
            refs = (scores("train"), scores("val") if has_val else None) if scoring else None
            train_ref, val_ref = broadcast_object(refs) if engine.fsdp else refs
        train_set = modality.pair_dataset(ctx, data, "train", train_ref)
        val_set = modality.pair_dataset(ctx, data, "val", val_ref) if has_val else None
        log.info("DPO (%s, beta %g, reference %s): %d pairs", cfg.dpo.loss, cfg.dpo.beta, task.reference, len(train_set))
        train_text(engine, task, train_set, PairCollator(pad), val_set, eval_batch_size=cfg.eval_batch_size)

    def loss_metrics(self, modality: "TextModality", ctx: "Ctx", task: nn.Module, data: DataBundle,
                     split: str) -> dict[str, float]:
        chosen, rejected = text_eval.preference_scores(task.model, modality.pair_dataset(ctx, data, split),
                                                       PairCollator(modality.tokenizer(ctx).pad_token_id),
                                                       ctx.modality.eval_batch_size)
        metrics = text_eval.preference_metrics(chosen, rejected)
        records = data.records(split)
        for kind in ("trap", "gold"):
            idx = [i for i, r in enumerate(records) if pair_kind(r) == kind]
            part = text_eval.preference_metrics([chosen[i] for i in idx], [rejected[i] for i in idx])
            metrics.update({f"{kind}/{k}": v for k, v in part.items()})
        return metrics


def precompute_reference(task: DPOTask, pairs: PairDataset, pad_id: int, device: torch.device,
                         batch_size: int) -> list[tuple[float, float]]:
    """The starting model's scores of every pair, computed once (no second model is kept)."""
    from torch.utils.data import DataLoader

    task.to(device)
    out: list[tuple[float, float]] = []
    with text_eval.evaluating(task):
        for batch in DataLoader(pairs, batch_size=batch_size, collate_fn=PairCollator(pad_id)):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            scores = task.side_logps(task.model, batch)
            n = scores.shape[0] // 2
            out += list(zip(scores[:n].tolist(), scores[n:].tolist()))
    return out


RECIPES: dict[str, type[TextRecipe]] = {"sft": SFTRecipe, "dpo": DPORecipe}
"""The recipe of each ``modality.method``."""


def recipe_for(method: str) -> TextRecipe:
    """The recipe of ``modality.method``; a one-line error naming the valid methods otherwise."""
    try:
        return RECIPES[method]()
    except KeyError:
        raise FrameworkError(f"modality.method={method!r} is unknown; use one of {', '.join(RECIPES)}") from None
