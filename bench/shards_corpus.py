"""A large sharded image-text corpus, audited and trained on from its shards, with peak memory.

Writes ``--items`` small image-caption pairs (32 px JPEGs of random blocks, one caption each)
into tar shards of ``--per-shard`` samples, then runs the real entry point on them::

    python -m framework +modality=alignment data.root=DIR 'data.train="train/shard-{000000..N}.tar"' \
        stages=[audit,train] trainer.max_steps=STEPS trainer.num_workers=2 ...

and prints the item count, the wall time of each part and the peak resident memory (``ru_maxrss``
of the largest process: the run itself or one of its audit or loader workers), next to what the
corpus takes on disk. ``docs/data.md`` (Shards, at scale) records a run of it::

    OMP_NUM_THREADS=1 python bench/shards_corpus.py --items 100000

``--keep DIR`` writes the corpus there and leaves it (and the run dir) for inspection.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framework.data.shards import ShardWriter  # noqa: E402

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]


def write_corpus(folder: Path, items: int, per_shard: int, seed: int = 0) -> str:
    """``items`` pairs under ``folder/train``; returns the ``data.train`` brace range (relative)."""
    rng = np.random.default_rng(seed)
    with ShardWriter(folder / "train", per_shard=per_shard) as writer:
        for i in range(items):
            blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)  # 4x4 random blocks -> distinct pHashes
            img = Image.fromarray(blocks).resize((32, 32), Image.NEAREST)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            colour = COLOURS[int(blocks[0, 0].argmax()) + 3 * int(blocks.mean() > 127)]
            writer.write(f"{i:08d}", {"jpg": buf.getvalue(), "txt": f"blocks mostly {colour}, item {i}".encode()})
    return os.path.relpath(writer.spec(), folder)


def run(folder: Path, spec: str, steps: int, workers: int, run_dir: Path) -> dict[str, float]:
    """The entry point on the corpus: audit, then ``steps`` training steps from the shards."""
    cmd = [sys.executable, "-m", "framework", "+modality=alignment", f"data.root={folder}",
           f"data.train='{spec}'", "data.val=null", "data.test=null", "stages=[audit,train]",
           f"trainer.max_steps={steps}", f"trainer.num_workers={workers}", "trainer.batch_size=64",
           "trainer.log_every=1", "trainer.checkpoint_every=0", f"hydra.run.dir={run_dir}",
           # random blocks share colours by chance: no class or caption gates are the point here
           "data.gates.enforce=false",
           # no decode while listing: the audit decodes every item on every core, training streams
           "data.probe_media=false"]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"the run failed with exit code {proc.returncode}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    return {"run_s": seconds, "peak_rss_mib": peak_kib / 1024}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (trainer.num_workers)")
    parser.add_argument("--keep", type=Path, default=None, help="write the corpus here and keep it")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="shards_corpus_"))
    try:
        t0 = time.perf_counter()
        spec = write_corpus(folder, args.items, args.per_shard)
        write_s = time.perf_counter() - t0
        disk = sum(p.stat().st_size for p in (folder / "train").glob("*.tar"))
        figures = run(folder, spec, args.steps, args.workers, folder / "run")
        audit = json.loads((folder / "run" / "audit" / "audit.json").read_text())
        clean = next(r for r in audit["results"] if r["name"] == "cleanliness")["measured"]
        metrics = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
        steps = max((m.get("step", 0) for m in metrics), default=0)
        figures.update(items=args.items, audited_items=clean["items"], trained_steps=steps, write_s=write_s,
                       fingerprint_s=clean["seconds"]["fingerprint"], corpus_mib=disk / 2**20)
        print(json.dumps(figures, indent=1))
        print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
        return figures
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
