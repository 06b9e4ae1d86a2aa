"""What the audit benches share: photo-like JPEGs, planted duplicates, a cold page cache, a started pool.

Tiny synthetic PNGs decode a hundred times faster than camera photos, so a bench on them measures
the pool's overhead, not the audit's work. :func:`photo` makes a JPEG that costs about what a
photo of its size costs to decode: a smooth colour field (a coarse random grid upsampled, plus a
linear gradient), a few flat shapes, a slight blur and sensor-like noise, 256-1024 px a side by
default, at JPEG quality 80-94. Item ``i`` of seed ``s`` is the same on every machine.

:func:`planted_set` adds known problems: exact copies (the same bytes), near copies (the source
scaled to 80-90%, brightened and re-encoded) and test items copied from train (leaks), and returns
the planted pairs as ground truth.

:func:`evict` takes files out of the page cache before a timed run: ``posix_fadvise(DONTNEED)``
on each file (any user; the files are synced first, as dirty pages cannot be dropped), or the
whole machine's cache through ``/proc/sys/vm/drop_caches`` where the process may write it. :func:`resident_bytes` says
how much of the files is still cached afterwards (``fincore`` from util-linux), so a run can state
how cold it really started.

:class:`CpuMeter` adds up the CPU seconds this process and every process under it (the pool's
workers) use inside a ``with`` block: on a shared machine, CPU seconds per item tell whether a
worker count that did not speed up was short of cores or did more work.

:func:`warm_up` runs the gate on two items before anything is timed: the imports of first use
(the decoders, SciPy's FFT) and the audit pool's forkserver (importing the main script, the
framework and the decoders) happen once per process, as in a real audit.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from framework.data.checks import CheckContext
from framework.data.gates.cleanliness import CleanlinessGate
from framework.data.parallel import AuditConfig, ItemPool
from framework.data.records import DataBundle

SIDES = (256, 1024)


def photo(seed: int, index: int, sides: tuple[int, int] = SIDES) -> bytes:
    """JPEG bytes of a photo-like image, its width and height drawn from ``sides`` (inclusive)."""
    rng = np.random.default_rng([seed, index])
    w, h = (int(v) for v in rng.integers(sides[0], sides[1] + 1, 2))
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    gx, gy = np.meshgrid(np.linspace(0, 1, w, dtype=np.float32), np.linspace(0, 1, h, dtype=np.float32))
    gradient = gx[..., None] * rng.uniform(-60, 60, 3) + gy[..., None] * rng.uniform(-60, 60, 3)  # (h, w, 3)
    field_ = np.asarray(coarse, dtype=np.float32) * 0.7 + gradient.astype(np.float32)
    img = Image.fromarray(np.clip(field_, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    pixels = np.asarray(img.filter(ImageFilter.GaussianBlur(1.5)), dtype=np.int16)
    pixels = pixels + rng.normal(0, 6, (h, w, 1)).astype(np.int16)  # grain, the same on every channel
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(80, 95)))
    return buf.getvalue()


def near_copy(source: bytes, seed: int, index: int) -> bytes:
    """``source`` scaled to 80-90%, brightened by 5% and re-encoded at quality 75: a near duplicate."""
    rng = np.random.default_rng([seed, index, 1])
    with Image.open(io.BytesIO(source)) as img:
        scale = float(rng.uniform(0.8, 0.9))
        small = img.convert("RGB").resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    ImageEnhance.Brightness(small).enhance(1.05).save(buf, "JPEG", quality=75)
    return buf.getvalue()


def _write_photo(job: tuple[str, int, int, tuple[int, int]]) -> int:
    path, seed, index, sides = job
    data = photo(seed, index, sides)
    Path(path).write_bytes(data)
    return len(data)


def write_photos(paths: Sequence[Path], seed: int, indices: Sequence[int] | None = None,
                 sides: tuple[int, int] = SIDES, workers: int | None = None) -> int:
    """Write ``photo(seed, indices[k])`` (``indices`` default ``0..``) to ``paths[k]`` on ``workers``
    processes (default one per core); returns the bytes written."""
    indices = range(len(paths)) if indices is None else indices
    jobs = [(str(p), seed, int(i), sides) for p, i in zip(paths, indices)]
    for parent in {Path(p).parent for p in paths}:
        parent.mkdir(parents=True, exist_ok=True)
    if len(jobs) < 64 or workers == 1:
        return sum(map(_write_photo, jobs))
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        return sum(pool.map(_write_photo, jobs, chunksize=16))


@dataclass
class PlantedSet:
    """Image files with known duplicates.

    Attributes:
        paths: One file per item, in item order.
        splits: ``train`` or ``test`` per item (the first 80% train).
        planted: ``(copy, source, kind)`` per planted item, ``kind`` one of ``exact``, ``near``, ``leak``.
    """

    paths: list[Path]
    splits: list[str]
    planted: list[tuple[int, int, str]] = field(default_factory=list)

    def truth_pairs(self) -> set[frozenset[int]]:
        """Every planted ``{copy, source}`` pair."""
        return {frozenset((c, s)) for c, s, _ in self.planted}


def planted_set(folder: Path, n: int, seed: int = 0, sides: tuple[int, int] = SIDES,
                rates: tuple[float, float, float] = (0.02, 0.02, 0.01)) -> PlantedSet:
    """``n`` JPEGs under ``folder`` (1000 a sub-folder): about ``rates`` = (exact, near, leak)
    fractions are planted copies of an earlier item; leaks are test items copied from train.
    Sources are always original photos, so each planted pair is its own group."""
    rng = np.random.default_rng([seed, 7])
    n_train = int(n * 0.8)
    paths = [folder / f"{i // 1000:04d}" / f"{i:07d}.jpg" for i in range(n)]
    splits = ["train" if i < n_train else "test" for i in range(n)]
    planted: list[tuple[int, int, str]] = []
    originals: list[int] = []
    for i in range(n):
        roll = rng.random()
        pool = originals if i < n_train else [o for o in originals if o < n_train]  # a leak's source is train
        kind = None
        if originals and roll < rates[0]:
            kind = "exact"
        elif originals and roll < rates[0] + rates[1]:
            kind = "near"
        elif i >= n_train and roll < sum(rates) and pool:
            kind = "leak"
        if kind is None:
            originals.append(i)
            continue
        choices = pool if kind == "leak" else [o for o in originals if splits[o] == splits[i]] or originals
        planted.append((i, int(choices[int(rng.integers(0, len(choices)))]), kind))
    copies = {c for c, _, _ in planted}
    fresh = [i for i in range(n) if i not in copies]
    write_photos([paths[i] for i in fresh], seed, fresh, sides)  # originals first, in one parallel pass
    for copy, source, kind in planted:
        data = paths[source].read_bytes()
        paths[copy].parent.mkdir(parents=True, exist_ok=True)
        paths[copy].write_bytes(near_copy(data, seed, copy) if kind == "near" else data)
    return PlantedSet(paths, splits, planted)


def files_under(folder: Path) -> list[Path]:
    """Every regular file under ``folder``."""
    return [p for p in folder.rglob("*") if p.is_file()]


EVICTION = ("fadvise", "drop_caches", "none")


def evict(paths: Iterable[Path], method: str = "fadvise") -> str:
    """Take ``paths`` out of the page cache; returns what was done.

    ``fadvise``: ``posix_fadvise(DONTNEED)`` on each file (any user; only these files go cold, the
    libraries the audit imports stay cached, as they are when an audit starts). ``drop_caches``:
    the whole machine's page cache (root outside a container; libraries go cold too, and every
    other process on the machine pays for it), falling back to ``fadvise`` where not allowed.
    ``none``: leaves the cache as it is (a warm run).
    """
    if method not in EVICTION:
        raise ValueError(f"cache eviction {method!r}: use one of {', '.join(EVICTION)}")
    if method == "none":
        return "none (warm page cache)"
    os.sync()  # dirty pages cannot be dropped
    if method == "drop_caches":
        try:
            with open("/proc/sys/vm/drop_caches", "w") as fh:
                fh.write("3\n")
            return "drop_caches"
        except OSError:
            pass
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "posix_fadvise(DONTNEED)" + (" (drop_caches not allowed)" if method == "drop_caches" else "")


def resident_bytes(paths: Sequence[Path], batch: int = 500) -> int | None:
    """Bytes of ``paths`` in the page cache (``fincore``); ``None`` where ``fincore`` is missing."""
    if shutil.which("fincore") is None:
        return None
    total = 0
    for k in range(0, len(paths), batch):
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths[k : k + batch])],
                             capture_output=True, text=True, check=False).stdout
        total += sum(int(v) for v in out.split() if v.isdigit())
    return total


def warm_up(bundle: DataBundle, workers: int) -> float:
    """Seconds to run the cleanliness gate on two of ``bundle``'s records in this process and, for
    ``workers`` > 1, on the audit pool: the imports of first use, and the pool's forkserver."""
    start = time.perf_counter()
    two = DataBundle(root=bundle.root, splits={"train": bundle.records()[:2]})
    CleanlinessGate().run(two, CheckContext("bench", {}, (), Path(bundle.root)))
    if workers > 1:
        pool = ItemPool(AuditConfig(workers=workers, chunk_size=1, min_items=0))
        CleanlinessGate().run(two, CheckContext("bench", {}, (), Path(bundle.root), pool=pool))
    return time.perf_counter() - start


class CpuMeter:
    """CPU seconds (user + system) of this process and its descendants inside the ``with`` block.

    Descendants are sampled every ``interval`` seconds (``psutil``), so a worker's last fraction of
    an interval before it exits is missed: an estimate, low by at most ``interval`` per worker.
    ``seconds`` stays ``nan`` where ``psutil`` is missing.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.seconds = float("nan")
        self._seen: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:  # exited between listing and reading
                continue
            self._seen[proc.pid] = times.user + times.system

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "CpuMeter":
        try:
            import psutil  # noqa: F401
        except ImportError:
            return self
        self._sample()
        self._start = dict(self._seen)  # the forkserver's and this process's seconds so far
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        self.seconds = sum(v - self._start.get(pid, 0.0) for pid, v in self._seen.items())
