"""The audit's per-item throughput on photo-sized JPEGs against the number of worker processes.

It writes ``--items`` photo-like JPEGs of 256-1024 px a side once (``bench/audit_data.py``: smooth
colour fields, shapes and grain, so they cost what photos of that size cost to decode; fixed seed),
as plain files with a JSONL manifest or as tar shards (``--format``). Then, for each worker count
in each round, it takes the image files out of the page cache (``--cache``: ``posix_fadvise(DONTNEED)``
per file by default, or the whole cache with ``drop_caches``; the method and the bytes still
cached, by ``fincore``, are printed), and runs
the whole audit with ``audit.workers=N``. It prints items/s of the per-item work (read, decode,
pHash, SHA-1: the cleanliness gate's ``fingerprint`` seconds, worker start-up included) and of
the whole audit, the speed-up over one worker and the efficiency (speed-up / workers), with the
load average before and after each run (the machine may be shared)::

    python bench/audit_parallel.py                                  # workers 1..cores, 1000 items
    python bench/audit_parallel.py --workers 1,2,4,8 --items 4000 --format shards --json audit.json
    python bench/audit_parallel.py --workers 1,2 --engine dask      # a local Dask cluster
    python bench/audit_parallel.py --smoke                          # seconds: proves it runs

The goal is near-linear scaling up to the number of cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import write_json  # noqa: E402
from audit_data import EVICTION, CpuMeter, SIDES, evict, files_under, resident_bytes, warm_up, write_photos  # noqa: E402

from framework.data.audit import run_audit  # noqa: E402
from framework.data.config import DataConfig  # noqa: E402
from framework.data.loading import load_bundle  # noqa: E402
from framework.data.parallel import AuditConfig, ItemPool, available_cores  # noqa: E402
from framework.data.shards import ShardWriter  # noqa: E402


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def write_corpus(folder: Path, items: int, fmt: str, seed: int, sides: tuple[int, int]) -> str:
    """``items`` photo-like JPEGs under ``folder``; returns the ``data.train`` value that names them."""
    paths = [folder / "images" / f"{i // 1000:04d}" / f"{i:07d}.jpg" for i in range(items)]
    write_photos(paths, seed, sides=sides)
    if fmt == "files":
        with (folder / "train.jsonl").open("w") as fh:
            for i, p in enumerate(paths):
                fh.write(json.dumps({"path": str(p.relative_to(folder)), "text": f"image {i}"}) + "\n")
        return "train.jsonl"
    with ShardWriter(folder / "train", per_shard=250) as writer:
        for i, p in enumerate(paths):
            writer.write(f"{i:07d}", {"jpg": p.read_bytes(), "txt": f"image {i}".encode()})
    shutil.rmtree(folder / "images")
    return os.path.relpath(writer.spec(), folder)


def measure(folder: Path, spec: str, workers: int, engine: str, chunk_size: int, cache: str) -> dict[str, Any]:
    """One audit with ``workers`` processes, the files evicted from the page cache first."""
    cfg = DataConfig(root=str(folder), train=spec, probe_media=False)
    bundle = load_bundle(cfg, label_type="none")
    files = [p for p in files_under(folder) if p.suffix in (".jpg", ".tar")]
    method = evict(files, cache)
    cached = resident_bytes(files)
    pool = ItemPool(AuditConfig(workers=workers, engine=engine, chunk_size=chunk_size, min_items=0))
    load_before = load_average()
    start = time.perf_counter()
    with CpuMeter() as cpu:
        report = run_audit(bundle, cfg, modality="bench", out_dir=folder / f"audit_{workers}", pool=pool)
    total = time.perf_counter() - start
    clean = report.result("cleanliness").measured
    return {"workers": workers, "items": clean["items"], "fingerprint_s": clean["seconds"]["fingerprint"],
            "audit_s": total, "cpu_s": cpu.seconds, "cache_eviction": method, "cached_bytes_at_start": cached,
            "load_before": load_before, "load_after": load_average()}


def summarise(runs: list[dict[str, Any]], counts: list[int]) -> list[dict[str, Any]]:
    """Median items/s per worker count over the rounds, speed-up over the first count, efficiency."""
    rows = []
    for w in counts:
        mine = [r for r in runs if r["workers"] == w]
        rows.append({"workers": w,
                     "per_item_items_s": statistics.median(r["items"] / r["fingerprint_s"] for r in mine),
                     "audit_items_s": statistics.median(r["items"] / r["audit_s"] for r in mine),
                     "cpu_ms_per_item": statistics.median(1000 * r["cpu_s"] / r["items"] for r in mine),
                     "cores_used": statistics.median(r["cpu_s"] / r["audit_s"] for r in mine),
                     "rounds": len(mine)})
    base, base_audit, base_w = rows[0]["per_item_items_s"], rows[0]["audit_items_s"], rows[0]["workers"]
    for row in rows:
        row["speedup"] = row["per_item_items_s"] / base
        row["efficiency"] = row["speedup"] / (row["workers"] / base_w)
        row["audit_speedup"] = row["audit_items_s"] / base_audit
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cores = available_cores()
    parser.add_argument("--workers", default=",".join(str(w) for w in range(1, cores + 1)),
                        help=f"comma-separated worker counts (default 1..{cores}, this machine's cores)")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--format", choices=("files", "shards"), default="files")
    parser.add_argument("--engine", choices=("processes", "dask"), default="processes")
    parser.add_argument("--chunk-size", type=int, default=AuditConfig.chunk_size, help="audit.chunk_size")
    parser.add_argument("--rounds", type=int, default=2, help="runs per worker count, interleaved; the median is shown")
    parser.add_argument("--cache", choices=EVICTION, default="fadvise",
                        help="before each run: evict the image files (fadvise, default), the whole page cache "
                             "(drop_caches: needs root, and makes libraries cold too), or nothing (none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="48 small images, workers 1,2, one round: seconds")
    args = parser.parse_args(argv)
    sides = SIDES
    if args.smoke:
        args.items, args.workers, args.rounds, args.chunk_size, sides = 48, "1,2", 1, 8, (64, 128)
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{args.items} photo-like JPEGs of {sides[0]}-{sides[1]} px as {args.format}, engine {args.engine}, "
          f"chunk {args.chunk_size}; {cores} cores; load average {load_average()}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="audit_parallel_") as tmp:
        t0 = time.perf_counter()
        spec = write_corpus(Path(tmp), args.items, args.format, args.seed, sides)
        print(f"written in {time.perf_counter() - t0:.1f}s (not timed)", flush=True)
        bundle = load_bundle(DataConfig(root=tmp, train=spec, probe_media=False), label_type="none")
        startup = warm_up(bundle, max(counts) if args.engine == "processes" else 1)
        print(f"first-use imports and pool start-up, once per process (not timed below): {startup:.2f}s; "
              f"load {load_average()}", flush=True)
        for _ in range(args.rounds):
            for w in counts:
                run = measure(Path(tmp), spec, w, args.engine, args.chunk_size, args.cache)
                runs.append(run)
                cached = "unknown" if run["cached_bytes_at_start"] is None else f"{run['cached_bytes_at_start'] / 2**20:.1f} MiB"
                print(f"  workers {w}: per-item {run['items'] / run['fingerprint_s']:.1f} items/s, audit "
                      f"{run['audit_s']:.2f}s; cache cleared by {run['cache_eviction']}, {cached} still cached; "
                      f"load {run['load_before']} -> {run['load_after']}", flush=True)
    rows = summarise(runs, counts)
    print(f"{'workers':>7} {'per-item items/s':>17} {'speed-up':>9} {'efficiency':>11} {'audit items/s':>14} "
          f"{'speed-up':>9} {'CPU ms/item':>12} {'cores used':>11}")
    for row in rows:
        print(f"{row['workers']:>7} {row['per_item_items_s']:>17.1f} {row['speedup']:>9.2f} {row['efficiency']:>11.2f} "
              f"{row['audit_items_s']:>14.1f} {row['audit_speedup']:>9.2f} {row['cpu_ms_per_item']:>12.1f} "
              f"{row['cores_used']:>11.2f}")
    print("CPU ms/item: CPU seconds of the audit and its workers per item; cores used: CPU seconds / audit "
          "seconds (a worker count short of this many cores was sharing them).")
    print(f"load average after: {load_average()}")
    figures = {"pool_startup_s": startup, "items": args.items, "format": args.format, "engine": args.engine, "chunk_size": args.chunk_size,
               "sides": list(sides), "rows": rows, "runs": runs}
    write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
