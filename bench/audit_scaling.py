"""How the cleanliness audit scales: hashing, near-duplicate search and leakage at 10k-100k items,
against imagededup's PHash on the same images.

Generates images in a temporary folder, with planted problems (about 2% exact copies, 2% near
copies, and 1% of the test split copied from train), builds a bundle (80% train, 20% test), then
times ``CleanlinessGate.run`` at each size on ``--workers`` processes (the pool started before
anything is timed, once per process, as in an audit). ``--images png`` (the default) writes small
random-block PNGs (``--image-size``, 16 px); ``--images jpeg`` writes photo-like JPEGs of 256-1024
px a side (``bench/audit_data.py``), which decode about as slowly as photos of that size do.
Image generation and writing are NOT timed; the files are taken out of the page cache before each
timed side (``--cache``). What is timed is the gate itself:

* fingerprint: read each file, SHA-1 its bytes, decode it and compute its pHash;
* duplicate search: exact groups, multi-index-hashing near-duplicate search, grouping, leakage;
* total: the whole gate run, including findings.

The peer (``--peer imagededup``, the ``bench`` extra) is imagededup's ``PHash``: ``encode_images``
then ``find_duplicates`` at the same Hamming radius and worker count, on the same files; it finds
near and exact copies by pHash alone (no SHA-1, no split-leak check), by an all-pairs search, so
it runs up to ``--peer-max-items``. The bench prints both sides' items/s, the ratio ours/peer
(>1: ours faster), and how far the duplicate sets agree: pairs of items each side puts in one
group, and (JPEGs) the share of the planted pairs each side found.

A second table times the near-duplicate search alone on random 64-bit hashes held in memory,
up to sizes where an all-pairs search would be out of reach.

    python bench/audit_scaling.py --sizes 10000 50000 100000
    python bench/audit_scaling.py --images jpeg --sizes 1000 4000 --search-sizes --json scaling.json
    python bench/audit_scaling.py --smoke
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit_data import EVICTION, SIDES, evict, planted_set, warm_up  # noqa: E402
from common import write_json  # noqa: E402

from framework.data import CheckContext, DataBundle, Record  # noqa: E402
from framework.data.config import DataConfig  # noqa: E402
from framework.data.dedup import hamming_pairs  # noqa: E402
from framework.data.gates import CleanlinessGate  # noqa: E402
from framework.data.parallel import AuditConfig, ItemPool, resolve_workers  # noqa: E402

RADIUS = int(DataConfig().gates.cleanliness["image_hamming"])  # the audit's default near-duplicate radius


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


def jpeg_dataset(folder: Path, n: int, sides: tuple[int, int], seed: int = 0) -> tuple[DataBundle, set[frozenset[int]]]:
    """``n`` photo-like JPEGs with planted duplicates (``bench/audit_data.py``); the bundle and the
    planted pairs of item numbers."""
    planted = planted_set(folder, n, seed, sides)
    records = [Record(id=f"{i}", split=split, source=str(path), media=path, label=str(i % 10))
               for i, (path, split) in enumerate(zip(planted.paths, planted.splits))]
    splits = {name: [r for r in records if r.split == name] for name in ("train", "test")}
    return DataBundle(root=folder, splits=splits), planted.truth_pairs()


def _components(links: Iterable[Iterable[int]], n: int) -> set[frozenset[int]]:
    """Unordered pairs of items joined, directly or through others, by ``links`` (groups of item numbers)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for group in links:
        group = list(group)
        for other in group[1:]:
            parent[root(other)] = root(group[0])
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return {frozenset((a, b)) for m in members.values() for k, a in enumerate(m) for b in m[k + 1 :]}


def time_gate(bundle: DataBundle, out_dir: Path, workers: int = 1, cache: str = "none") -> dict[str, Any]:
    """Run the cleanliness gate once on ``workers`` processes (files evicted from the page cache
    first, per ``cache``); return its timings, counts and the pairs of items it put in one group."""
    records = bundle.records()
    evict([Path(r.media) for r in records if r.media is not None], cache)
    pool = ItemPool(AuditConfig(workers=workers, min_items=0))
    ctx = CheckContext("vision", {}, (), out_dir, pool=pool)
    start = time.perf_counter()
    result = CleanlinessGate().run(bundle, ctx)
    total = time.perf_counter() - start
    secs = result.measured["seconds"]
    index = {r.id: k for k, r in enumerate(records)}
    groups = [[index[i] for i in f.items] for f in result.findings
              if f.kind in ("exact_duplicate", "near_duplicate", "leak")]
    return {"total": total, "fingerprint": secs["fingerprint"], "search": secs["duplicate_search"],
            "exact": result.measured["exact_duplicates"], "near": result.measured["near_duplicates"],
            "leaked": result.measured["leaked"], "pairs": _components(groups, len(records))}


def peer_settings(workers: int, radius: int) -> str:
    """The peer's name, version and settings, as printed."""
    import imagededup

    return (f"imagededup {imagededup.__version__}: PHash(verbose=False).encode_images(recursive=True, "
            f"num_enc_workers={workers}) + find_duplicates(max_distance_threshold={radius}, "
            f"search_method='brute_force_cython', num_dist_workers={workers})")


def time_peer(bundle: DataBundle, workers: int, radius: int, cache: str = "none") -> dict[str, Any]:
    """imagededup's PHash on the bundle's files: encode, then find duplicates within ``radius``."""
    from imagededup.methods import PHash

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("imagededup")]:
        logging.getLogger(name).setLevel(logging.WARNING)  # each module's logger prints INFO lines at every step
    records = bundle.records()
    paths = [Path(r.media) for r in records]
    evict(paths, cache)
    hasher = PHash(verbose=False)
    start = time.perf_counter()
    encodings = hasher.encode_images(image_dir=bundle.root, recursive=True, num_enc_workers=workers)
    encoded = time.perf_counter()
    with warnings.catch_warnings():  # "num_enc_workers has no effect since encodings are already provided"
        warnings.simplefilter("ignore", RuntimeWarning)
        found = hasher.find_duplicates(encoding_map=encodings, max_distance_threshold=radius,
                                       search_method="brute_force_cython", num_dist_workers=workers)
    end = time.perf_counter()
    index = {str(p.relative_to(bundle.root)): k for k, p in enumerate(paths)}
    groups = [[index[name], *(index[d] for d in dups)] for name, dups in found.items() if dups]
    return {"total": end - start, "encode": encoded - start, "search": end - encoded, "encoded": len(encodings),
            "pairs": _components(groups, len(records))}


def agreement(ours: set[frozenset[int]], peer: set[frozenset[int]], truth: Optional[set[frozenset[int]]]) -> dict[str, Any]:
    """Pairs both sides grouped, each side alone, and (with planted pairs) each side's recall of them."""
    both = ours & peer
    out: dict[str, Any] = {"ours_pairs": len(ours), "peer_pairs": len(peer), "both": len(both),
                           "only_ours": len(ours - peer), "only_peer": len(peer - ours),
                           "jaccard": len(both) / max(len(ours | peer), 1)}
    if truth:
        out.update(planted=len(truth), ours_recall=len(truth & ours) / len(truth),
                   peer_recall=len(truth & peer) / len(truth))
    return out


def growth(times: list[float], sizes: list[int]) -> list[str]:
    """Time ratio to the previous size, and that ratio scaled to a 10x size step."""
    out = ["-"]
    for k in range(1, len(sizes)):
        ratio = times[k] / max(times[k - 1], 1e-9)
        per10x = ratio ** (math.log(10) / math.log(sizes[k] / sizes[k - 1]))
        out.append(f"x{ratio:.2f} (x{per10x:.1f} per 10x; linear would be x10)")
    return out


def bench_gate(sizes: list[int], images: str, image_size: int, sides: tuple[int, int], workers: int,
               cache: str, peer: str, peer_max: int) -> list[dict[str, Any]]:
    """Per size: the gate's timings and counts, and the peer's with the agreement of the two."""
    rows = []
    started = False
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            truth = None
            if images == "jpeg":
                bundle, truth = jpeg_dataset(Path(tmp) / "images", n, sides)
            else:
                bundle = make_dataset(Path(tmp) / "images", n, image_size)
            gen = time.perf_counter() - t0
            if not started:
                print(f"  first-use imports and pool start-up, once per process (not timed): "
                      f"{warm_up(bundle, workers):.2f}s")
                started = True
            load_before = [round(x, 2) for x in os.getloadavg()]
            stats = time_gate(bundle, Path(tmp), workers, cache)
            row: dict[str, Any] = {"items": n, "generate_s": gen, "load_before": load_before,
                                   **{k: v for k, v in stats.items() if k != "pairs"}}
            if peer == "imagededup" and n <= peer_max:
                peer_stats = time_peer(bundle, workers, RADIUS, cache)
                row["peer"] = {k: v for k, v in peer_stats.items() if k != "pairs"}
                row["agreement"] = agreement(stats["pairs"], peer_stats["pairs"], truth)
            row["load_after"] = [round(x, 2) for x in os.getloadavg()]
        rows.append(row)
        print(f"  n={n}: generated in {gen:.1f}s (not timed below); load {row['load_before']} -> {row['load_after']}",
              flush=True)
    totals = [r["total"] for r in rows]
    grow = growth(totals, [r["items"] for r in rows])
    print(f"\ncleanliness gate on {images.upper()} files, {workers} worker(s) (timed: hashing + near-dup search + leakage):")
    print(f"{'items':>8} {'total s':>8} {'hash s':>8} {'search s':>9} {'exact':>6} {'near':>6} {'leaked':>6}  growth of total")
    for r, g in zip(rows, grow):
        print(f"{r['items']:>8} {r['total']:>8.2f} {r['fingerprint']:>8.2f} {r['search']:>9.3f} "
              f"{r['exact']:>6} {r['near']:>6} {r['leaked']:>6}  {g}")
    compared = [r for r in rows if "peer" in r]
    if compared:
        print(f"\nduplicate finding, ours (whole gate) against {peer_settings(workers, RADIUS)}:")
        print(f"{'items':>8} {'ours items/s':>13} {'peer items/s':>13} {'ours/peer':>10} {'peer enc s':>11} "
              f"{'peer search s':>14} {'pairs ours':>11} {'pairs peer':>11} {'both':>6} {'jaccard':>8} "
              f"{'recall ours':>12} {'recall peer':>12}")
        for r in compared:
            a, p = r["agreement"], r["peer"]
            ours_rate, peer_rate = r["items"] / r["total"], r["items"] / p["total"]
            r["ours_items_s"], r["peer_items_s"], r["ratio"] = ours_rate, peer_rate, ours_rate / peer_rate
            recall = (f"{a['ours_recall']:>12.3f} {a['peer_recall']:>12.3f}" if "planted" in a
                      else f"{'-':>12} {'-':>12}")
            print(f"{r['items']:>8} {ours_rate:>13.1f} {peer_rate:>13.1f} {r['ratio']:>10.2f} {p['encode']:>11.2f} "
                  f"{p['search']:>14.3f} {a['ours_pairs']:>11} {a['peer_pairs']:>11} {a['both']:>6} "
                  f"{a['jaccard']:>8.3f} {recall}")
    elif peer == "imagededup":
        print(f"\n(peer skipped: every size is over --peer-max-items {peer_max})")
    return rows


def bench_search(sizes: list[int], radius: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    rows = []
    print(f"\nnear-duplicate search alone (random 64-bit hashes in memory, radius {radius}):")
    for n in sizes:
        hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
        hashes[1::50] = hashes[0::50][: hashes[1::50].size] ^ np.uint64(0b1011)  # planted pairs at distance 3
        hashes = np.unique(hashes)
        start = time.perf_counter()
        pairs = hamming_pairs(hashes, radius)
        rows.append({"items": n, "seconds": time.perf_counter() - start, "pairs": len(pairs), "planted": n // 50})
        print(f"{n:>9} items: {rows[-1]['seconds']:.2f}s, {len(pairs)} pairs found (planted {n // 50})", flush=True)
    for n, g in zip(sizes, growth([r["seconds"] for r in rows], sizes)):
        print(f"{n:>9}: {g}")
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--images", choices=("png", "jpeg"), default="png",
                        help="png: random-block PNGs of --image-size px; jpeg: photo-like JPEGs of 256-1024 px")
    parser.add_argument("--image-size", type=int, default=16, help="side of the PNGs (default 16)")
    parser.add_argument("--search-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--radius", type=int, default=RADIUS, help="Hamming radius of the search-alone table")
    parser.add_argument("--workers", default="auto", help="audit.workers, and the peer's worker count (default auto: every core)")
    parser.add_argument("--cache", choices=EVICTION, default="fadvise",
                        help="before each timed side: evict the image files (default), the whole page cache, or nothing")
    parser.add_argument("--peer", choices=("imagededup", "none"), default="imagededup")
    parser.add_argument("--peer-max-items", type=int, default=20_000,
                        help="largest size the peer runs at (its search compares all pairs)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="one size of 60 small JPEGs, a tiny search: seconds")
    args = parser.parse_args(argv)
    sides = SIDES
    if args.smoke:
        args.images, args.sizes, args.search_sizes, sides = "jpeg", [60], [2000], (64, 128)
    workers = resolve_workers(args.workers)
    if args.peer == "imagededup":
        try:
            print(f"peer: {peer_settings(workers, RADIUS)}")
        except ImportError:
            raise SystemExit("--peer imagededup needs imagededup: pip install 'framework[bench]' (or --peer none)") from None
    what = f"JPEGs of {sides[0]}-{sides[1]} px" if args.images == "jpeg" else f"{args.image_size} px PNGs"
    print(f"{what}, sizes {args.sizes}, {workers} worker(s), page cache before each side: {args.cache}; "
          f"load average {[round(x, 2) for x in os.getloadavg()]}", flush=True)
    rows = bench_gate(args.sizes, args.images, args.image_size, sides, workers, args.cache, args.peer, args.peer_max_items)
    search = bench_search(args.search_sizes, args.radius) if args.search_sizes else []
    figures = {"images": args.images, "sides": list(sides) if args.images == "jpeg" else [args.image_size] * 2,
               "workers": workers, "cache": args.cache, "radius": RADIUS,
               "peer": peer_settings(workers, RADIUS) if args.peer == "imagededup" else None,
               "gate": rows, "search": search}
    write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
