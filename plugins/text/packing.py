"""Datasets and batches for SFT and DPO: packing, position ids and padding.

Attention never crosses examples, and no attention mask tensor is built here: every example (and
the padding at a row's end) starts its own run of position ids at 0, and transformers derives the
block-diagonal causal mask from those restarts (``masking_utils.find_packed_sequence_indices``,
used when ``attention_mask`` is ``None`` and no cache is in use). With
``attn_implementation=flash_attention_2`` on CUDA the same position ids select the varlen
kernel, so packed sequences cost no padding at all.

Each batch also lists its loss positions (``targets``, see :func:`targets`), computed here on the
host: the task then projects only those positions' hidden states onto the vocabulary
(:func:`plugins.text.task.target_logps`), and no device-to-host sync is needed to find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from plugins.text.chat import Encoded

IGNORE = -100  # label of tokens the loss skips


def pack(examples: Sequence[Encoded], max_length: int) -> list[list[int]]:
    """Group example indices into sequences of at most ``max_length`` tokens, in order (next fit):
    each group becomes one packed row. Examples are already truncated to ``max_length``."""
    groups: list[list[int]] = []
    used = max_length
    for i, ex in enumerate(examples):
        n = len(ex.input_ids)
        if used + n > max_length:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += n
    return groups


def row(examples: Sequence[Encoded]) -> dict[str, list[int]]:
    """One (possibly packed) row: ids, labels (``IGNORE`` off the mask) and restarting positions."""
    ids, labels, pos = [], [], []
    for ex in examples:
        ids += ex.input_ids
        labels += [t if m else IGNORE for t, m in zip(ex.input_ids, ex.mask)]
        pos += list(range(len(ex.input_ids)))
    return {"input_ids": ids, "labels": labels, "position_ids": pos}


class SFTDataset(Dataset):
    """Rows for SFT: packed groups of examples, or one example per row."""

    def __init__(self, examples: Sequence[Encoded], max_length: int, packing: bool) -> None:
        groups = pack(examples, max_length) if packing else [[i] for i in range(len(examples))]
        self.rows = [row([examples[i] for i in g]) for g in groups]
        self.examples_per_row = [len(g) for g in groups]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]


def targets(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss positions of a ``(B, T)`` label batch, flattened: ``target_index`` ``(N,)`` (index
    ``b * T + t`` of each position whose next token is a label), ``target_ids`` ``(N,)`` (that next
    token) and ``target_row`` ``(N,)`` (``b``), row-major."""
    nxt = labels[:, 1:]
    rows, cols = (nxt != IGNORE).nonzero(as_tuple=True)
    return {"target_index": rows * labels.shape[1] + cols, "target_ids": nxt[rows, cols], "target_row": rows}


@dataclass
class Collator:
    """Pads a list of rows into a batch; pad tokens get their own position run and no labels.

    Batches: ``input_ids``, ``labels``, ``position_ids`` ``(B, T)`` int64, the loss positions of
    :func:`targets`, and ``tokens`` (a Python int: non-pad tokens, which the engine sums into
    ``tokens_per_s``).
    """

    pad_id: int

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        pos = torch.arange(width).repeat(len(rows), 1)
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[b, :n] = torch.tensor(r["input_ids"])
            labels[b, :n] = torch.tensor(r["labels"])
            pos[b, :n] = torch.tensor(r["position_ids"])
            pos[b, n:] = torch.arange(width - n)  # padding: a run of its own
        out: dict[str, Any] = {"input_ids": ids, "labels": labels, "position_ids": pos, **targets(labels),
                               "tokens": sum(len(r["input_ids"]) for r in rows)}
        return out


class PairDataset(Dataset):
    """DPO items: the chosen and rejected sides of each pair, plus reference log-probs when they
    were precomputed. A batch of ``B`` pairs becomes ``2B`` rows: chosen first, then rejected."""

    def __init__(self, chosen: Sequence[Encoded], rejected: Sequence[Encoded],
                 reference: Sequence[tuple[float, float]] | None = None) -> None:
        self.chosen, self.rejected, self.reference = list(chosen), list(rejected), reference

    def __len__(self) -> int:
        return len(self.chosen)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {"chosen": row([self.chosen[index]]), "rejected": row([self.rejected[index]])}
        if self.reference is not None:
            item["ref_chosen"], item["ref_rejected"] = self.reference[index]
        return item


@dataclass
class PairCollator:
    """Stacks ``B`` pairs into ``2B`` padded rows (chosen rows first)."""

    pad_id: int

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [it["chosen"] for it in items] + [it["rejected"] for it in items]
        # The first tensor counts the batch's items for the engine's items_per_s: pairs, not rows.
        batch = {"pair_index": torch.arange(len(items)), **Collator(self.pad_id)(rows)}
        if "ref_chosen" in items[0]:
            batch["ref_chosen"] = torch.tensor([it["ref_chosen"] for it in items], dtype=torch.float32)
            batch["ref_rejected"] = torch.tensor([it["ref_rejected"] for it in items], dtype=torch.float32)
        batch["pairs"] = len(items)
        return batch
