"""The audit's per-item throughput on 256 px JPEGs against the number of worker processes.

For each worker count it writes ``--items`` fresh 256 x 256 JPEGs (random smooth images, so no two
are near duplicates) into a new folder, as tar shards or as plain files with a JSONL manifest
(``--format``), loads them with the core readers and runs the whole audit with
``audit.workers=N``; a fresh folder per run keeps earlier runs' files out of the page cache as far
as a benchmark can without root. It prints items/s of the per-item work (decode, pHash, SHA-1;
the cleanliness gate's ``fingerprint`` seconds, worker start-up included) and of the whole audit,
and the ratio to one worker, with the load average (the machine may be shared)::

    OMP_NUM_THREADS=1 python bench/audit_parallel.py --workers 1,2 --items 2000
    python bench/audit_parallel.py --workers 1,2,4,8 --items 20000 --format files   # bigger machines
    python bench/audit_parallel.py --workers 2 --engine dask                        # a local Dask cluster

The goal is near-linear scaling up to the number of cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.data.audit import run_audit  # noqa: E402
from framework.data.config import DataConfig  # noqa: E402
from framework.data.loading import load_bundle  # noqa: E402
from framework.data.parallel import AuditConfig, ItemPool, available_cores  # noqa: E402
from framework.data.shards import ShardWriter  # noqa: E402

SIDE = 256


def jpeg(rng: np.random.Generator) -> bytes:
    """A 256 px JPEG of smooth random colour (an 8 x 8 grid upsampled), about 10 KB."""
    grid = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    buf = io.BytesIO()
    grid.resize((SIDE, SIDE), Image.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_images(folder: Path, items: int, fmt: str, seed: int) -> str:
    """``items`` JPEGs under ``folder``; returns the ``data.train`` value that names them."""
    rng = np.random.default_rng(seed)
    if fmt == "shards":
        with ShardWriter(folder / "train", per_shard=500) as writer:
            for i in range(items):
                writer.write(f"{i:07d}", {"jpg": jpeg(rng), "txt": f"image {i}".encode()})
        return os.path.relpath(writer.spec(), folder)
    (folder / "images").mkdir(parents=True)
    with (folder / "train.jsonl").open("w") as fh:
        for i in range(items):
            (folder / "images" / f"{i:07d}.jpg").write_bytes(jpeg(rng))
            fh.write(json.dumps({"path": f"images/{i:07d}.jpg", "text": f"image {i}"}) + "\n")
    return "train.jsonl"


def measure(workers: int, items: int, fmt: str, engine: str, seed: int) -> dict[str, float]:
    """One audit of fresh images with ``workers`` processes: items/s of the per-item work and of the audit."""
    folder = Path(tempfile.mkdtemp(prefix=f"audit_bench_{workers}_"))
    try:
        spec = write_images(folder, items, fmt, seed)
        cfg = DataConfig(root=str(folder), train=spec, probe_media=False)
        bundle = load_bundle(cfg, label_type="none")
        pool = ItemPool(AuditConfig(workers=workers, engine=engine, min_items=0))
        start = time.perf_counter()
        report = run_audit(bundle, cfg, modality="bench", out_dir=folder / "audit", pool=pool)
        total = time.perf_counter() - start
        clean = report.result("cleanliness").measured
        return {"workers": workers, "items": clean["items"], "fingerprint_s": clean["seconds"]["fingerprint"],
                "audit_s": total}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--format", choices=("shards", "files"), default="shards")
    parser.add_argument("--engine", choices=("processes", "dask"), default="processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{args.items} JPEGs of {SIDE} px as {args.format}, engine {args.engine}; {available_cores()} cores; "
          f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    rows = [measure(w, args.items, args.format, args.engine, args.seed + w) for w in counts]
    base = rows[0]["items"] / rows[0]["fingerprint_s"]
    print(f"{'workers':>7} {'per-item items/s':>17} {'ratio':>6} {'audit items/s':>14} {'ratio':>6}")
    for row in rows:
        fp, whole = row["items"] / row["fingerprint_s"], row["items"] / row["audit_s"]
        print(f"{row['workers']:>7} {fp:>17.1f} {fp / base:>6.2f} {whole:>14.1f} "
              f"{whole / (rows[0]['items'] / rows[0]['audit_s']):>6.2f}")
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return rows


if __name__ == "__main__":
    main()
