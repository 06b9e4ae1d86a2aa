"""The map-style dataset the engine's loader reads: decoded pixels, a transform pipeline, a target."""

from __future__ import annotations

import random
from typing import Any, Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from framework.data.records import Record
from framework.media.augment import apply
from framework.media.images import ImageStore

UNLABELED = -1  # target of an item without a label (prediction only)


class ImageDataset(Dataset):
    """Records as ``{"image": (3, H, W) uint8, "target": int64}`` items.

    Args:
        records: The items, in order.
        store: Where the decoded pixels come from (decoded once, cached when they fit).
        classes: Class names; a record's label is looked up here (``UNLABELED`` when absent).
        pipeline: Transforms applied to each ``(H, W, 3)`` image, or ``None``.
    """

    def __init__(
        self, records: Sequence[Record], store: ImageStore, classes: Sequence[str], pipeline: A.Compose | None = None
    ) -> None:
        self.records = list(records)
        self.store = store
        self.index = {name: i for i, name in enumerate(classes)}
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.records)

    def reseed(self, seed: int) -> None:
        """Seed albumentations' own generators; the engine calls it before each item.

        One generator pair shared by every transform: ``Compose.set_random_seed`` would build a
        pair per transform, five times the cost on a per-item path.
        """
        if self.pipeline is not None:
            self.pipeline.set_random_state(np.random.Generator(np.random.PCG64(seed)), random.Random(seed))

    def target(self, record: Record) -> int:
        """The class index of ``record``'s label, or ``UNLABELED``."""
        if record.label is None:
            return UNLABELED
        return self.index.get(str(record.label), UNLABELED)

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.records[i]
        pixels = self.store.get(record)  # (H, W, 3) uint8
        if self.pipeline is not None:
            pixels = apply(self.pipeline, pixels)
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))  # (3, H, W)
        return {"image": image, "target": torch.tensor(self.target(record), dtype=torch.long)}
