"""How the cleanliness audit scales: hashing, near-duplicate search and leakage at 10k-100k items.

Generates small random-block PNGs (16x16 by default) in a temporary folder, with planted
problems (about 2% exact copies, 2% brightened near copies, and 1% of the test split copied
from train), builds a bundle (80% train, 20% test), then times ``CleanlinessGate.run`` at each
size. Image generation and writing are NOT timed; what is timed is the gate itself:

* fingerprint: read each file, SHA-1 its bytes, decode it and compute its pHash;
* duplicate search: exact groups, multi-index-hashing near-duplicate search, grouping, leakage;
* total: the whole gate run, including findings.

A second table times the near-duplicate search alone on random 64-bit hashes held in memory,
up to sizes where an all-pairs search would be out of reach.

    python bench/audit_scaling.py --sizes 10000 50000 100000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from framework.data import CheckContext, DataBundle, Record
from framework.data.dedup import hamming_pairs
from framework.data.gates import CleanlinessGate


def _blocks(rng: np.random.Generator, size: int) -> np.ndarray:
    pixels = np.zeros((size, size, 3), np.uint8)
    for _ in range(4):
        x, y = rng.integers(0, size * 3 // 4, 2)
        pixels[y : y + size // 3, x : x + size // 3] = rng.integers(0, 255, 3)
    return pixels


def make_dataset(folder: Path, n: int, size: int, seed: int = 0) -> DataBundle:
    """Write ``n`` PNGs with planted duplicates; return the bundle (80% train / 20% test)."""
    rng = np.random.default_rng(seed)
    records = []
    n_train = int(n * 0.8)
    for i in range(n):
        path = folder / f"{i // 1000:04d}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        roll = rng.random()
        source_idx = int(rng.integers(0, max(i, 1)))
        source = folder / f"{source_idx // 1000:04d}" / f"{source_idx}.png"
        if i > 0 and roll < 0.02:  # exact copy
            path.write_bytes(source.read_bytes())
        elif i > 0 and roll < 0.04:  # near copy: brighter
            with Image.open(source) as img:
                ImageEnhance.Brightness(img).enhance(1.1).save(path)
        elif i >= n_train and roll < 0.05:  # leak: test item copied from train
            src = folder / f"{source_idx % n_train // 1000:04d}" / f"{source_idx % n_train}.png"
            path.write_bytes(src.read_bytes())
        else:
            Image.fromarray(_blocks(rng, size)).save(path)
        split = "train" if i < n_train else "test"
        records.append(Record(id=f"{i}", split=split, source=str(path), media=path, label=str(i % 10)))
    return DataBundle(root=folder, splits={"train": records[:n_train], "test": records[n_train:]})


def time_gate(bundle: DataBundle, out_dir: Path) -> dict[str, float]:
    """Run the cleanliness gate once; return its timings and counts."""
    ctx = CheckContext("vision", {}, (), out_dir)
    start = time.perf_counter()
    result = CleanlinessGate().run(bundle, ctx)
    total = time.perf_counter() - start
    secs = result.measured["seconds"]
    return {"total": total, "fingerprint": secs["fingerprint"], "search": secs["duplicate_search"],
            "exact": result.measured["exact_duplicates"], "near": result.measured["near_duplicates"],
            "leaked": result.measured["leaked"]}


def growth(times: list[float], sizes: list[int]) -> list[str]:
    """Time ratio to the previous size, and that ratio scaled to a 10x size step."""
    out = ["-"]
    for k in range(1, len(sizes)):
        ratio = times[k] / max(times[k - 1], 1e-9)
        per10x = ratio ** (math.log(10) / math.log(sizes[k] / sizes[k - 1]))
        out.append(f"x{ratio:.2f} (x{per10x:.1f} per 10x; linear would be x10)")
    return out


def bench_gate(sizes: list[int], image_size: int) -> None:
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            bundle = make_dataset(Path(tmp), n, image_size)
            gen = time.perf_counter() - t0
            stats = time_gate(bundle, Path(tmp))
        rows.append((n, gen, stats))
        print(f"  n={n}: generated in {gen:.1f}s (not timed below)", flush=True)
    totals = [r[2]["total"] for r in rows]
    grow = growth(totals, [r[0] for r in rows])
    print("\ncleanliness gate on PNG files (timed: hashing + near-dup search + leakage):")
    print(f"{'items':>8} {'total s':>8} {'hash s':>8} {'search s':>9} {'exact':>6} {'near':>6} {'leaked':>6}  growth of total")
    for (n, _, s), g in zip(rows, grow):
        print(f"{n:>8} {s['total']:>8.2f} {s['fingerprint']:>8.2f} {s['search']:>9.3f} "
              f"{s['exact']:>6} {s['near']:>6} {s['leaked']:>6}  {g}")


def bench_search(sizes: list[int], radius: int) -> None:
    rng = np.random.default_rng(1)
    times = []
    print(f"\nnear-duplicate search alone (random 64-bit hashes in memory, radius {radius}):")
    for n in sizes:
        hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
        hashes[1::50] = hashes[0::50][: hashes[1::50].size] ^ np.uint64(0b1011)  # planted pairs at distance 3
        hashes = np.unique(hashes)
        start = time.perf_counter()
        pairs = hamming_pairs(hashes, radius)
        times.append(time.perf_counter() - start)
        print(f"{n:>9} items: {times[-1]:.2f}s, {len(pairs)} pairs found (planted {n // 50})", flush=True)
    for n, g in zip(sizes, growth(times, sizes)):
        print(f"{n:>9}: {g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--search-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--radius", type=int, default=4)
    args = parser.parse_args()
    bench_gate(args.sizes, args.image_size)
    if args.search_sizes:
        bench_search(args.search_sizes, args.radius)


if __name__ == "__main__":
    main()
