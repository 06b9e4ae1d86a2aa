"""Image-caption pairs: reading captions from manifest records, and the dataset the engine's loader reads.

Manifests are the core's JSONL or CSV (``data.format=jsonl|csv|auto``): a media ``path`` and the
captions, in any of these forms:

* JSONL ``"captions": ["a red circle", "a circle, red"]`` or ``"caption": "a red circle"`` (or a list);
* CSV a ``caption`` column; several captions of one image separated by ``|``.

Optional fields: ``label`` (a class name, for zero-shot classification), ``id``, and slice fields
(named in ``data.slices``). An image with several captions gets one of them per epoch, drawn with
the item's seeded RNG, so the choice is reproducible across resumes.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from framework.data.errors import DataError
from framework.data.records import Record
from framework.media import apply, crops_to_size
from framework import LoadedSample
from framework.media.images import ImageStore, SampleImages

if TYPE_CHECKING:
    import albumentations as A

CSV_SEPARATOR = "|"


def captions_of(record: Record) -> list[str]:
    """The captions of ``record``, in manifest order.

    Raises:
        DataError: naming ``file:line`` when the line has no caption or a caption is not text.
    """
    raw = record.fields.get("captions", record.fields.get("caption", record.text))
    if isinstance(raw, str):
        raw = [c for c in (part.strip() for part in raw.split(CSV_SEPARATOR)) if c] if CSV_SEPARATOR in raw else [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) and c.strip() for c in raw):
        raise DataError(record.source, f"record {record.id!r} has no usable caption (got {raw!r})",
                        "Give each image a 'caption' string or a non-empty 'captions' list of strings.")
    return [c.strip() for c in raw]


def check_captions(records: Sequence[Record]) -> int:
    """Validate every record's captions (see :func:`captions_of`); returns the number of captions."""
    return sum(len(captions_of(r)) for r in records)


class TokenCache:
    """Every distinct caption tokenized once: ``(input_ids, attention_mask)`` rows by caption."""

    def __init__(self, tokenize: Any, captions: Sequence[str]) -> None:
        unique = sorted(set(captions))
        enc = tokenize(unique) if unique else {"input_ids": torch.zeros(0, 1, dtype=torch.long),
                                               "attention_mask": torch.zeros(0, 1, dtype=torch.long)}
        self.row = {c: i for i, c in enumerate(unique)}
        self.input_ids = enc["input_ids"]  # (U, L)
        self.attention_mask = enc["attention_mask"]  # (U, L)

    def get(self, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(L,)`` token ids and mask of ``caption`` (which must have been cached)."""
        i = self.row[caption]
        return self.input_ids[i], self.attention_mask[i]


class CaptionDataset(Dataset):
    """Records as ``{"image": (3, H, W) uint8, "input_ids": (L,), "attention_mask": (L,), "index", "pair"}``
    (``index``: the image; ``pair``: the flat index of the image-caption pair drawn).

    Args:
        records: The images, in order.
        store: Decoded pixels (decoded once, cached when they fit).
        tokens: Tokenized captions (:class:`TokenCache` over every caption of ``records``).
        pipeline: Transforms applied to each ``(H, W, 3)`` image, or ``None``.
        sample: Draw one caption per item per epoch (training); ``False`` always takes the first.
    """

    def __init__(self, records: Sequence[Record], store: ImageStore, tokens: TokenCache,
                 pipeline: A.Compose | None = None, sample: bool = True) -> None:
        self.records = list(records)
        self.captions = [captions_of(r) for r in self.records]
        # Caption k of image i is pair offsets[i] + k: the flat index the training dynamics use.
        self.offsets = np.concatenate([[0], np.cumsum([len(c) for c in self.captions])]).astype(np.int64)
        self.store = store
        self.tokens = tokens
        self.pipeline = pipeline
        # A crop to the model's size first: uncached images reach it at their own size.
        self.crop_first = crops_to_size(pipeline, store.size)
        self.sample = sample

    def __len__(self) -> int:
        return len(self.records)

    def reseed(self, seed: int) -> None:
        """Seed albumentations' generators; the engine calls it before each batch."""
        if self.pipeline is not None:
            self.pipeline.set_random_state(np.random.Generator(np.random.PCG64(seed)), random.Random(seed))

    def image(self, i: int) -> torch.Tensor:
        """The ``(3, H, W)`` uint8 image of item ``i``, through the pipeline."""
        pixels = self.store.get(self.records[i], keep_size=self.crop_first)  # (H, W, 3) uint8
        if self.pipeline is not None:
            pixels = apply(self.pipeline, pixels)
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))  # (3, H, W)

    def __getitem__(self, i: int) -> dict[str, Any]:
        options = self.captions[i]
        # Python's RNG is seeded per batch from (seed, epoch, indices) by the engine: a new caption each epoch.
        k = random.randrange(len(options)) if self.sample and len(options) > 1 else 0
        ids, mask = self.tokens.get(options[k])
        return {"image": self.image(i), "input_ids": ids, "attention_mask": mask, "index": i,
                "pair": int(self.offsets[i] + k)}

    @property
    def num_pairs(self) -> int:
        """Image-caption pairs in all (the last entry of :attr:`offsets`)."""
        return int(self.offsets[-1])


class ImageOnlyDataset(Dataset):
    """The images of a :class:`CaptionDataset`, for encoding: ``{"image": (3, H, W) uint8}``."""

    def __init__(self, pairs: CaptionDataset) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.pairs.image(i)}


class PairDecoder:
    """Turns a shard sample (``KEY.jpg`` + ``KEY.txt`` caption, or ``KEY.json`` with ``captions``)
    into a training item ``{"image": (3, H, W) uint8, "input_ids": (L,), "attention_mask": (L,)}``;
    the streamed counterpart of :class:`CaptionDataset` (one caption drawn per item, seeded).

    Args:
        size: The image tower's ``(height, width)``.
        resize: The size policy (``modality.resize``).
        tokenize: The task's tokenizer (``texts -> {"input_ids", "attention_mask"}``, padded).
        pipeline: Transforms applied to each ``(H, W, 3)`` image, or ``None``.
    """

    def __init__(self, size: tuple[int, int], resize: str, tokenize: Any, pipeline: A.Compose | None = None) -> None:
        self.images, self.tokenize = SampleImages(size, resize, pipeline), tokenize

    def reseed(self, seed: int) -> None:
        """Seed albumentations' generators; the stream calls it before each item."""
        self.images.reseed(seed)

    def __call__(self, sample: LoadedSample) -> dict[str, Any]:
        meta = sample.json()
        options = meta.get("captions") or meta.get("caption") or sample.text()
        options = [options] if isinstance(options, str) else options
        if not isinstance(options, list) or not options or not all(isinstance(c, str) and c.strip() for c in options):
            raise ValueError(f"no usable caption (got {options!r})")
        image = self.images(sample)  # (3, H, W) uint8
        caption = options[random.randrange(len(options))].strip()  # the stream seeds `random` per item
        enc = self.tokenize([caption])
        return {"image": image, "input_ids": enc["input_ids"][0], "attention_mask": enc["attention_mask"][0]}
