"""Streaming training data from tar shards: shuffled, split across ranks and workers, resumable.

:class:`ShardStream` is a torch ``IterableDataset`` over shards (:mod:`framework.data.shards`).
It holds the shard list and one count per shard, never a list of items; each DataLoader worker
reads its own shards' headers, keeps up to ``buffer_size`` sample *locations* in its shuffle buffer
and reads a sample's bytes only when it is handed out.

Which worker reads what (``G = world_size * W`` streams, ``W = max(num_workers, 1)``): the
epoch's shard order is a seeded permutation of the shards (by ``(seed, epoch)``); stream
``g = rank * W + worker`` reads shards ``g, g + G, g + 2G, ...`` of that order when there are at
least ``G`` shards. With fewer shards every stream reads every shard and keeps the samples whose
position in the epoch is ``g`` modulo ``G``: still no item twice and none lost, but each worker
reads every shard's headers (a warning says so). Each stream shuffles with its own seeded buffer.

Under DDP every rank must take the same number of steps: the epoch is the smallest rank's number
of batches, and the streams of larger ranks stop early (a log line counts the items left out).
Items the bundle quarantined, and samples that fail to decode while streaming, are never handed out;
the latter are written with the reason to ``<report_dir>/stream_quarantine.jsonl`` (one file per rank and worker)
and the stream fills their place with the next item.

Resume: the position is a pure function of ``(epoch, batches consumed on the rank)`` and the
layout (world size, workers, batch size). :meth:`ShardStream.start` works out how many batches
each worker had handed out (the DataLoader takes batches from its workers in turn), replays each
worker's buffer from the shard headers without reading any data, and renumbers the workers so
the first batch after a resume comes from the worker whose turn it was: the rest of the epoch is
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from framework.data.records import DataBundle
from framework.errors import FrameworkError
from framework.data.shards import (LoadedSample, ShardSample, load_sample, quarantined_ids, sample_problem, scan_shard,
                                   split_shards)

if TYPE_CHECKING:
    from framework.modality import RunContext

log = logging.getLogger(__name__)

Decode = Callable[[LoadedSample], Any]
"""``decode(sample) -> item``: turns a sample's bytes into what the loop's batches hold; raising
any exception quarantines the sample."""

REPORT_NAME = "stream_quarantine"


@dataclass(frozen=True)
class Layout:
    """How an epoch is cut: what a mid-epoch resume must find unchanged."""

    world_size: int = 1
    num_workers: int = 0
    batch_size: int = 1
    drop_last: bool = False
    seed: int = 0
    shuffle: bool = True


def round_robin(batches: Sequence[int], n: int) -> tuple[list[int], int]:
    """The DataLoader's order over workers: ``n`` batches taken in turn from workers that still
    have some (``batches[w]`` each). Returns the batches taken from each worker and the worker
    whose turn is next."""
    taken, turn, served = [0] * len(batches), 0, 0
    while served < n and any(t < b for t, b in zip(taken, batches)):
        if taken[turn] < batches[turn]:
            taken[turn] += 1
            served += 1
        turn = (turn + 1) % len(batches)
    return taken, turn


class ShardStream(IterableDataset):
    """Items decoded from shards, in a seeded, rank- and worker-split, resumable order.

    Args:
        shards: The shard files, in their stable order.
        decode: ``decode(LoadedSample) -> item`` (runs in the DataLoader workers).
        seed: Base seed of the shard order, the buffers and the per-item generators.
        shuffle: Permute shards per epoch and shuffle through the buffer; ``False`` keeps file order.
        buffer_size: Samples held (as locations, not bytes) in each worker's shuffle buffer.
        exclude: Ids (``<shard stem>/<key>``) never to hand out (the bundle's quarantined items).
        report_dir: Where decoding failures are written; ``None`` logs them only.

    Call :meth:`bind` (the engine's ``dataloader`` does) before iterating.
    """

    def __init__(self, shards: Sequence[Path], decode: Decode, *, seed: int = 0, shuffle: bool = True,
                 buffer_size: int = 1000, exclude: Sequence[str] | set[str] = (), report_dir: Path | None = None) -> None:
        self.shards = [Path(s) for s in shards]
        if not self.shards:
            raise ValueError("ShardStream needs at least one shard")
        self.decode, self.buffer_size = decode, max(1, buffer_size)
        self.exclude = frozenset(exclude)
        self.report_dir = Path(report_dir) if report_dir is not None else None
        self.counts = [sum(1 for _ in self._usable(s)) for s in self.shards]  # headers only
        self.layout = Layout(seed=seed, shuffle=shuffle)
        self.rank, self.epoch = 0, 0
        self._taken: list[int] | None = None  # batches already handed out per worker (a resume)
        self._turn = 0

    # --- layout ----------------------------------------------------------------------------------

    def bind(self, *, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0,
             drop_last: bool = False, seed: int | None = None) -> None:
        """Fix the layout: batch size, this rank, the world size and the DataLoader's workers."""
        self.rank = rank
        self.layout = Layout(world_size, num_workers, batch_size, drop_last,
                             self.layout.seed if seed is None else seed, self.layout.shuffle)
        if len(self.shards) < self.streams:
            log.warning("%d shard(s) for %d streams (%d rank(s) x %d worker(s)): every worker reads every shard's "
                        "headers and keeps every %d-th sample; write at least %d shards to split by shard",
                        len(self.shards), self.streams, world_size, self.workers, self.streams, self.streams)

    @property
    def workers(self) -> int:
        """Streams per rank: the DataLoader's workers, or 1 without workers."""
        return max(1, self.layout.num_workers)

    @property
    def streams(self) -> int:
        """Streams in all: ``world_size * workers``."""
        return self.layout.world_size * self.workers

    def __len__(self) -> int:
        """Items this rank hands out per epoch."""
        return sum(self._quota(w) for w in range(self.workers))

    # --- counts ------------------------------------------------------------------------------------

    def _usable(self, shard: Path) -> Iterator[ShardSample]:
        for sample in scan_shard(shard):
            if sample.id not in self.exclude and sample_problem(sample) is None:
                yield sample

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.shards)))
        if self.layout.shuffle:
            random.Random(f"shards:{self.layout.seed}:{epoch}").shuffle(order)
        return order

    def _stream_items(self, g: int, epoch: int = 0) -> int:
        """Usable items stream ``g`` reads in an epoch (the same in every epoch)."""
        if len(self.shards) >= self.streams:
            return sum(self.counts[i] for i in self._order(epoch)[g :: self.streams])
        return len(range(g, sum(self.counts), self.streams))

    def _batches(self, items: int) -> int:
        b = self.layout.batch_size
        return items // b if self.layout.drop_last else -(-items // b)

    def _worker_batches(self, rank: int) -> list[int]:
        return [self._batches(self._stream_items(rank * self.workers + w)) for w in range(self.workers)]

    def batches_per_epoch(self) -> int:
        """Batches every rank takes per epoch: the smallest rank's, so DDP ranks stay in step."""
        return min(sum(self._worker_batches(r)) for r in range(self.layout.world_size))

    def _quota(self, w: int) -> int:
        """Items worker ``w`` of this rank hands out per epoch."""
        own = self._worker_batches(self.rank)
        taken, _ = round_robin(own, self.batches_per_epoch())
        items = self._stream_items(self.rank * self.workers + w)
        return items if taken[w] == own[w] and not self.layout.drop_last else taken[w] * self.layout.batch_size

    # --- position ----------------------------------------------------------------------------------

    def start(self, epoch: int, consumed_batches: int = 0) -> None:
        """Begin ``epoch`` after the first ``consumed_batches`` batches this rank has taken."""
        self.epoch = epoch
        if consumed_batches <= 0:
            self._taken, self._turn = None, 0
            return
        per_epoch = self.batches_per_epoch()
        quotas = [-(-self._quota(w) // self.layout.batch_size) for w in range(self.workers)]
        self._taken, self._turn = round_robin(quotas, min(consumed_batches, per_epoch))

    def state_dict(self, consumed_batches: int = 0) -> dict[str, Any]:
        """What a checkpoint keeps: the layout, the epoch and every (rank, worker) position."""
        quotas = {r: self._rank_quotas(r) for r in range(self.layout.world_size)}
        consumed = min(consumed_batches, self.batches_per_epoch())
        positions = {str(r): [t * self.layout.batch_size for t in round_robin(q, consumed)[0]]
                     for r, q in quotas.items()}
        return {"layout": asdict(self.layout), "epoch": self.epoch, "shards": len(self.shards),
                "items": sum(self.counts), "items_handed_out_per_worker": positions}

    def _rank_quotas(self, rank: int) -> list[int]:
        saved = self.rank
        self.rank = rank
        try:
            return [-(-self._quota(w) // self.layout.batch_size) for w in range(self.workers)]
        finally:
            self.rank = saved

    def check_resume(self, saved: Mapping[str, Any] | None, consumed_batches: int) -> str | None:
        """Why a resume at ``consumed_batches`` into the epoch cannot continue exactly (``None`` when it can)."""
        if not saved or consumed_batches <= 0:
            return None
        was = Layout(**saved["layout"])
        if was != self.layout:
            diff = ", ".join(f"{k} {getattr(was, k)} -> {getattr(self.layout, k)}" for k in asdict(was)
                             if getattr(was, k) != getattr(self.layout, k))
            return (f"the shard stream's layout changed mid-epoch ({diff}); a mid-epoch resume needs the same world "
                    f"size, trainer.num_workers and batch size. Set them back, or resume from a checkpoint taken at an "
                    f"epoch boundary")
        return None

    # --- iteration -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        physical = info.id if info is not None else 0
        # After a resume the DataLoader starts with its worker 0: give it the stream whose turn it is.
        w = (physical + self._turn) % self.workers
        skip = (self._taken[w] if self._taken else 0) * self.layout.batch_size
        yield from self._worker_items(w, skip)

    def _refs(self, g: int) -> Iterator[ShardSample]:
        order = self._order(self.epoch)
        if len(self.shards) >= self.streams:
            for i in order[g :: self.streams]:
                yield from self._usable(self.shards[i])
            return
        position = 0
        for i in order:
            for sample in self._usable(self.shards[i]):
                if position % self.streams == g:
                    yield sample
                position += 1

    def _shuffled(self, g: int) -> Iterator[ShardSample]:
        refs = self._refs(g)
        if not self.layout.shuffle:
            yield from refs
            return
        rng = random.Random(f"buffer:{self.layout.seed}:{self.epoch}:{g}")
        buffer: list[ShardSample] = []
        for ref in refs:
            if len(buffer) < self.buffer_size:
                buffer.append(ref)
                continue
            j = rng.randrange(len(buffer))
            yield buffer[j]
            buffer[j] = ref
        rng.shuffle(buffer)
        yield from buffer

    def _worker_items(self, w: int, skip: int) -> Iterator[Any]:
        g = self.rank * self.workers + w
        quota = self._quota(w)
        report = _Report(self.report_dir, self.rank, w)
        bad = report.known()
        handles: dict[Path, Any] = {}
        emitted = 0
        if skip >= quota:
            return
        try:
            last_pass = -1
            for ref in self._cycled(g):
                if ref is None:  # the end of a pass over the stream
                    if emitted == last_pass:
                        raise RuntimeError(f"stream {g}: every sample failed to decode (see {report.path})")
                    last_pass = emitted
                    continue
                if ref.id in bad:
                    continue
                if emitted < skip:  # a resume: the refs before the position, without reading them
                    emitted += 1
                    continue
                item = self._decode(ref, handles, g, emitted, report)
                if item is None:
                    bad.add(ref.id)
                    continue
                emitted += 1
                yield item
                if emitted >= quota:
                    return
        finally:
            for fh in handles.values():
                fh.close()

    def _cycled(self, g: int) -> Iterator[ShardSample | None]:
        """The stream's samples, then again from the start while items are missing (only when
        decoding failures left the stream short of its quota; a warning says so), ``None`` between passes."""
        yield from self._shuffled(g)
        log.warning("stream %d: decoding failures left it short of its items; repeating its first items", g)
        while True:
            yield None
            yield from self._shuffled(g)

    def _decode(self, ref: ShardSample, handles: dict[Path, Any], g: int, position: int, report: "_Report") -> Any:
        if ref.shard not in handles:
            if len(handles) >= 8:  # a buffer spans few shards: keep the recent ones open
                handles.pop(next(iter(handles))).close()
            handles[ref.shard] = ref.shard.open("rb")
        item_seed = abs(hash((self.layout.seed, self.epoch, g, position))) & 0xFFFFFFFF
        random.seed(item_seed)
        np.random.seed(item_seed)
        reseed = getattr(self.decode, "reseed", None)
        if callable(reseed):
            reseed(item_seed)
        try:
            return self.decode(load_sample(ref, handles[ref.shard]))
        except Exception as exc:  # any decoder failure makes the sample unusable
            report.add(ref, "undecodable", f"{type(exc).__name__}: {exc}", self.epoch)
            return None


class _Report:
    """One (rank, worker)'s decoding failures, appended as JSON lines; every file of the folder is read back."""

    def __init__(self, folder: Path | None, rank: int, worker: int) -> None:
        self.folder = folder
        self.path = folder / f"{REPORT_NAME}.rank{rank}.worker{worker}.jsonl" if folder is not None else None

    def known(self) -> set[str]:
        if self.folder is None or not self.folder.is_dir():
            return set()
        return {json.loads(line)["id"] for p in self.folder.glob(f"{REPORT_NAME}.*.jsonl")
                for line in p.read_text(encoding="utf-8").splitlines() if line.strip()}

    def add(self, ref: ShardSample, reason: str, detail: str, epoch: int) -> None:
        log.warning("quarantined %s:%s while streaming: %s", ref.shard, ref.key, detail)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": ref.id, "source": f"{ref.shard}:{ref.key}", "reason": reason,
                                 "detail": detail, "epoch": epoch}) + "\n")


def read_stream_quarantine(folder: Path) -> list[dict[str, Any]]:
    """Every decoding failure the streams of a run wrote under ``folder``, each once."""
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob(f"{REPORT_NAME}.*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                seen.setdefault(entry["id"], entry)
    return list(seen.values())


def shard_stream(bundle: DataBundle, split: str, decode: Decode, *, seed: int, buffer_size: int = 1000,
                 report_dir: Path | None = None, shuffle: bool = True) -> ShardStream | None:
    """A :class:`ShardStream` over the shards ``split`` was read from, skipping the items the bundle
    quarantined; ``None`` when the split was not read from shards (train on its records as usual).

    A modality's ``train`` streams its training split with it::

        stream = shard_stream(data, "train", decode_pair, seed=ctx.seed, report_dir=ctx.path("data"))
        loader = engine.dataloader(stream if stream is not None else map_style_dataset)
    """
    shards = split_shards(bundle, split)
    if not shards:
        return None
    return ShardStream(shards, decode, seed=seed, shuffle=shuffle, buffer_size=buffer_size,
                       exclude=quarantined_ids(bundle), report_dir=report_dir)


def train_stream(ctx: "RunContext[Any, Any]", data: DataBundle, decode: Decode) -> ShardStream | None:
    """The run's training stream: :func:`shard_stream` over the ``train`` split with the run's seed,
    ``data.shuffle_buffer`` and decoding failures written under ``<run dir>/data``; ``None`` when
    the train split was not read from shards.

    The one path every modality that streams shards takes in ``train`` (alignment, vision, speech)::

        stream = train_stream(ctx, data, decode)
        train_set = stream if stream is not None else MyDataset(data.records("train"))
        loader = engine.dataloader(train_set, shuffle=True)

    ``decode(LoadedSample) -> item`` runs in the loader workers; give it ``reseed(seed)`` when it
    draws from a library's own generator (the stream calls it before each item). Anything it
    raises quarantines the sample with the message as its reason.
    """
    buffer_size = int(getattr(ctx.data, "shuffle_buffer", 1000))
    if buffer_size < 1:
        raise FrameworkError(f"data.shuffle_buffer={buffer_size} must be at least 1 (samples held per loader worker)")
    stream = shard_stream(data, "train", decode, seed=ctx.seed, buffer_size=buffer_size, report_dir=ctx.path("data"))
    if stream is not None:
        log.info("train: streaming %d item(s) from %d shard(s), shuffle buffer %d", sum(stream.counts),
                 len(stream.shards), buffer_size)
    return stream
