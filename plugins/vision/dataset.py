"""What the engine's loader reads: the map-style :class:`ImageDataset` (decoded pixels, a transform
pipeline, a target) and, for a train split of tar shards, :class:`ClassDecoder`, which turns each
streamed sample into the same item."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from framework.data.records import Record
from framework.data.shards import LoadedSample
from framework.media import apply, crops_to_size
from framework.media.images import ImageStore, SampleImages

if TYPE_CHECKING:
    import albumentations as A

UNLABELED = -1  # target of an item without a label (prediction only)
# PCG64 state from a 32-bit item seed: spread over 128 bits by an odd multiplier (a bijection),
# on one fixed stream (any odd increment).
_PCG_MULT = 0x9E3779B97F4A7C15_F39CC0605CEDC835
_PCG_INC = 0xDA3E39CB94B95BDB_6A09E667F3BCC909
_MASK_128 = 2**128 - 1


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
        # A crop to the model's size first: uncached images reach it at their own size.
        self.crop_first = crops_to_size(pipeline, store.size)
        # One generator pair shared by every transform, installed on the first reseed and then
        # reseeded in place for each item: a fresh pair per item (or Compose.set_random_seed, a
        # pair per transform) costs several times more on the per-item path.
        self._bits = np.random.PCG64(0)
        self._py_random = random.Random(0)

    def __len__(self) -> int:
        return len(self.records)

    def reseed(self, seed: int) -> None:
        """Seed the pipeline's generators from ``seed``; the engine calls it before each batch.

        Setting the PCG64 state in place is the cheapest way to make the pipeline's draws a pure
        function of the batch (about 2 µs, against 10 µs for a new generator).
        """
        if self.pipeline is None:
            return
        if self.pipeline.py_random is not self._py_random:
            self.pipeline.set_random_state(np.random.Generator(self._bits), self._py_random)
        state = {"state": seed * _PCG_MULT & _MASK_128, "inc": _PCG_INC}
        self._bits.state = {"bit_generator": "PCG64", "state": state, "has_uint32": 0, "uinteger": 0}
        self._py_random.seed(seed)

    def target(self, record: Record) -> int:
        """The class index of ``record``'s label, or ``UNLABELED``."""
        if record.label is None:
            return UNLABELED
        return self.index.get(str(record.label), UNLABELED)

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.records[i]
        pixels = self.store.get(record, keep_size=self.crop_first)  # (H, W, 3) uint8
        if self.pipeline is not None:
            pixels = apply(self.pipeline, pixels)
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))  # (3, H, W)
        return {"image": image, "target": torch.tensor(self.target(record), dtype=torch.long)}


class ClassDecoder:
    """Turns a shard sample (``KEY.jpg``/``KEY.png``... + ``KEY.cls`` class name, or ``KEY.json``
    with ``label``) into ``{"image": (3, H, W) uint8, "target": int64}``, as :class:`ImageDataset`
    makes it: the streamed counterpart of that dataset (:func:`framework.train_stream`). A sample
    without a label or with a class the model was not built for raises (the stream quarantines it).

    Args:
        size: The model's ``(height, width)``.
        resize: The size policy (``modality.resize``).
        classes: The model's class names.
        pipeline: Transforms applied to each ``(H, W, 3)`` image, or ``None``.
    """

    def __init__(self, size: tuple[int, int], resize: str, classes: Sequence[str],
                 pipeline: A.Compose | None = None) -> None:
        self.images = SampleImages(size, resize, pipeline)
        self.index = {name: i for i, name in enumerate(classes)}

    def reseed(self, seed: int) -> None:
        """Seed the pipeline's generators; the stream calls it before each item."""
        self.images.reseed(seed)

    def __call__(self, sample: LoadedSample) -> dict[str, Any]:
        label = sample.label(audio=False)
        if label is None:
            raise ValueError("no class label (write KEY.cls, or 'label' in KEY.json)")
        target = self.index.get(str(label))
        if target is None:
            raise ValueError(f"class {label!r} is not one of the model's {len(self.index)} classes "
                             f"({', '.join(list(self.index)[:5])}{', ...' if len(self.index) > 5 else ''})")
        return {"image": self.images(sample), "target": torch.tensor(target, dtype=torch.long)}
