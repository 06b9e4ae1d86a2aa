"""Reproducible, resumable, rank-sharded data order, and seeded augmentation.

The sampler yields ``(epoch, index)`` keys rather than bare indices. The :class:`SeededDataset`
wrapper unpacks them and seeds every generator from the seed, the epoch and the batch's indices
before fetching a batch, so augmentation randomness is a pure function of the data order: it is
the same in any DataLoader worker, with any ``num_workers``, and after a resume (which restarts on
a batch boundary).
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from typing import Any, Callable, ContextManager, Iterable, Iterator, Mapping, Optional, Protocol, Sized, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from framework.training.device import move_to_device
from framework.training.distributed import all_reduce_sum
from framework.training.seed import derive_seed

_MASK_32 = 2**32 - 1


class ResumableSampler(Sampler[tuple[int, int]]):
    """Seeded, shardable, resumable order over ``range(num_items)``.

    Like ``DistributedSampler``, the permutation (a function of ``(seed, epoch)``) is padded by
    wrapping around so that every rank gets the same number of items (or truncated with
    ``drop_last``), and rank ``r`` takes positions ``r, r + world, ...``.

    Args:
        num_items: Length of the dataset.
        seed: Base seed of the order.
        shuffle: Permute per epoch; ``False`` keeps ``0..n-1``.
        rank: This process's rank.
        world_size: Number of ranks.
        drop_last: Drop the tail instead of padding it, so no item is seen twice in one epoch.
    """

    def __init__(
        self,
        num_items: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.num_items, self.seed, self.shuffle = num_items, seed, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        if drop_last and num_items % world_size:
            self.num_samples = num_items // world_size
        else:
            self.num_samples = math.ceil(num_items / world_size)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's permutation and restart from its beginning."""
        self.epoch, self.start = epoch, 0

    def resume_from(self, epoch: int, consumed: int) -> None:
        """Continue ``epoch`` after the first ``consumed`` items of this rank's share."""
        self.epoch, self.start = epoch, consumed

    def epoch_indices(self) -> list[int]:
        """This rank's full list of indices for the current epoch (ignores the resume offset)."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.num_items, generator=gen).tolist()
        else:
            order = list(range(self.num_items))
        total = self.num_samples * self.world_size
        if total > len(order):
            order += (order * math.ceil(total / max(1, len(order))))[: total - len(order)]
        return order[:total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in self.epoch_indices()[self.start :]:
            yield epoch, index

    def __len__(self) -> int:
        return self.num_samples - self.start


class SeededDataset(Dataset):
    """Wraps a map-style dataset so each batch of ``(epoch, index)`` keys is fetched under seeded generators.

    Before a batch (the DataLoader's batched fetch, :meth:`__getitems__`), the global Python,
    NumPy and torch (CPU) generators are seeded from ``(seed, epoch, *indices)``, and the items are
    then fetched in order, drawing from them as a plain loader's items do. One seeding per batch
    rather than per item: reseeding costs tens of microseconds (Python's and NumPy's Mersenne
    Twisters, a library's own generators), which per item is several percent of a CPU training
    step. The batch is itself a pure function of ``(seed, epoch)``, the batch size and the rank,
    and a worker always fetches whole batches, so the guarantees above hold. A single key
    (:meth:`__getitem__`) is seeded from ``(seed, epoch, index)``.

    Torch's generator is restored after the batch, so fetching in the main process
    (``num_workers=0``) does not shift the training process's own stream (dropout); Python's and
    NumPy's are left reseeded, which keeps them a pure function of the data order. Code that needs
    its own NumPy stream across batches should hold its own ``numpy.random.Generator``. If the
    dataset has ``reseed(seed: int)`` (for libraries with their own generator, such as
    albumentations' ``Compose.set_random_state``) it is called with the same seed before the batch.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        self._reseed = getattr(dataset, "reseed", None)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        """The items of a batch, in order, after seeding every generator once from the batch."""
        if not keys:
            return []
        epoch = keys[0][0]
        if any(e != epoch for e, _ in keys):
            raise ValueError("a batch of SeededDataset keys spans epochs; use the engine's ResumableSampler")
        indices = [index for _, index in keys]
        batch_seed = derive_seed(self.seed, epoch, *indices)
        # torch.manual_seed would also seed every CUDA device (~100 µs); items are made on the CPU.
        generator = torch.default_generator
        saved = generator.get_state()
        try:
            random.seed(batch_seed)
            np.random.seed(batch_seed & _MASK_32)
            generator.manual_seed(batch_seed)
            if self._reseed is not None:
                self._reseed(batch_seed & _MASK_32)
            return [self.dataset[index] for index in indices]
        finally:
            generator.set_state(saved)


def dataset_length(dataset: Any) -> int:
    """``len(dataset)`` with an error that says what the engine needs."""
    if not isinstance(dataset, Sized):
        raise TypeError(
            f"engine.dataloader needs a map-style dataset with __len__ and __getitem__; got {type(dataset).__name__}"
        )
    return len(dataset)


@runtime_checkable
class StreamDataset(Protocol):
    """An ``IterableDataset`` the engine can split, count and resume (:class:`framework.data.stream.ShardStream`)."""

    def bind(self, *, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0,
             drop_last: bool = False, seed: int | None = None) -> None:
        """Fix the layout before the first epoch."""

    def batches_per_epoch(self) -> int:
        """Batches every rank takes per epoch."""

    def start(self, epoch: int, consumed_batches: int = 0) -> None:
        """Begin ``epoch`` after ``consumed_batches`` batches of this rank."""

    def state_dict(self, consumed_batches: int = 0) -> dict[str, Any]:
        """The layout and positions, for the checkpoint's ``data_state``."""

    def check_resume(self, saved: Mapping[str, Any] | None, consumed_batches: int) -> str | None:
        """Why a resume from ``saved`` cannot continue exactly, or ``None``."""


def stream_of(loader: Any) -> StreamDataset | None:
    """The loader's dataset when it is a :class:`StreamDataset`, else ``None``."""
    dataset = getattr(loader, "dataset", None)
    return dataset if isinstance(dataset, IterableDataset) and isinstance(dataset, StreamDataset) else None


def batches_per_epoch(loader: Any) -> int:
    """Micro-batches one epoch of ``loader`` yields on this rank (a DataLoader or a sized iterable).

    Raises:
        TypeError: The loader has no length.
    """
    stream = stream_of(loader)
    if stream is not None:
        return stream.batches_per_epoch()
    sampler, batch_size = getattr(loader, "sampler", None), getattr(loader, "batch_size", None)
    if isinstance(sampler, ResumableSampler) and batch_size:
        rounding = math.floor if getattr(loader, "drop_last", False) else math.ceil
        return int(rounding(sampler.num_samples / batch_size))
    try:
        return len(loader)
    except TypeError:
        raise TypeError("engine.steps needs a loader with a length (a DataLoader or a list of batches)") from None


def epoch_batches(loader: Any, epoch: int, consumed: int) -> Iterator[Any]:
    """The batches of ``epoch`` after the first ``consumed`` ones (a resume mid-epoch).

    A loader over a :class:`ResumableSampler` skips them without fetching; any other loader's first
    ``consumed`` batches are fetched and dropped (its sampler's ``set_epoch`` is called if it has one).
    """
    stream = stream_of(loader)
    if stream is not None:  # the stream skips without reading the data
        stream.start(epoch, consumed)
        return iter(loader)
    sampler, batch_size = getattr(loader, "sampler", None), getattr(loader, "batch_size", None)
    if isinstance(sampler, ResumableSampler) and batch_size:
        sampler.resume_from(epoch, consumed * batch_size)
        return iter(loader)
    set_epoch = getattr(sampler, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)
    return itertools.islice(iter(loader), consumed, None)


def one_thread_per_worker(worker_id: int) -> None:
    """A loader worker's ``worker_init_fn``: OpenCV (albumentations' kernels) to one thread.

    torch already runs one intra-op thread in each worker; OpenCV would start a pool of one
    thread per core in every worker, so ``N`` workers beside the training process's own threads
    would oversubscribe the cores the model's step needs.
    """
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(1)


def make_dataloader(dataset: Dataset, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                    shuffle: bool = True, collate_fn: Optional[Callable[[list[Any]], Any]] = None,
                    drop_last: bool = False, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``dataset`` with a :class:`ResumableSampler` (this rank's shard) and
    :class:`SeededDataset` fetches; see :meth:`framework.training.Engine.dataloader`. A
    :class:`StreamDataset` is bound to this rank and the workers and splits, orders and seeds itself.

    The workers of a map-style loader persist across epochs (a new epoch does not start new
    processes, which on a small data set costs as much as the epoch): the order comes from the
    sampler in this process and each batch's seed from its keys, so nothing in a worker carries
    over from one epoch to the next. A stream's workers are started per epoch, since its epoch
    and resume position reach them only through a fresh copy of the dataset."""
    if isinstance(dataset, IterableDataset) and isinstance(dataset, StreamDataset):
        dataset.bind(batch_size=batch_size, rank=rank, world_size=world_size, num_workers=num_workers,
                     drop_last=drop_last, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, drop_last=drop_last,
                          num_workers=num_workers, pin_memory=pin_memory,
                          worker_init_fn=one_thread_per_worker if num_workers > 0 else None)
    sampler = ResumableSampler(dataset_length(dataset), seed, shuffle, rank, world_size, drop_last)
    return DataLoader(
        SeededDataset(dataset, seed), batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
        drop_last=drop_last, num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0,
        worker_init_fn=one_thread_per_worker if num_workers > 0 else None,
        # Its own generator, so creating an iterator never draws from the global torch RNG
        # (which would make a resumed run's dropout differ from an uninterrupted one).
        generator=torch.Generator().manual_seed(seed),
    )


def weighted_means(model: nn.Module, loader: Iterable[Any], outputs: Mapping[str, str], weight: Callable[[Any], Any],
                   *, device: torch.device, autocast: Callable[[], ContextManager[Any]]) -> dict[str, float]:
    """Means of ``model``'s outputs over ``loader``, weighted per batch and summed over ranks; see
    :meth:`framework.training.Engine.weighted_means` (which passes its device and autocast)."""
    was_training = model.training
    model.eval()
    names = list(outputs)
    sums = torch.zeros(len(names) + 1, device=device)  # (weighted output sums..., weight sum)
    seen: set[str] = set()
    try:
        for batch in loader:
            batch = move_to_device(batch, device, non_blocking=device.type == "cuda")
            with autocast():
                out = model(batch)
            w = weight(batch)
            for i, name in enumerate(names):
                if outputs[name] in out:
                    sums[i] += out[outputs[name]].detach().float() * w
                    seen.add(name)
            sums[-1] += w
    finally:
        model.train(was_training)
    values = all_reduce_sum(sums).tolist()
    total = max(values[-1], 1e-12)
    return {name: values[i] / total for i, name in enumerate(names) if name in seen}
