"""The audit's per-item work on a process pool and on a Dask cluster gives the single-process results."""

from __future__ import annotations

import io
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from framework.data.audit import AuditReport, run_audit
from framework.data.config import DataConfig
from framework.data.loading import load_bundle
from framework.data.parallel import AuditConfig, ItemPool, resolve_workers
from framework.data.shards import ShardWriter
from framework.errors import FrameworkError
from shard_checks import audit_outcome


def jpeg(seed: int) -> bytes:
    grid = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8))
    buf = io.BytesIO()
    grid.resize((32, 32), Image.BICUBIC).save(buf, "JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DataConfig]:
    """Shards with an exact duplicate, a corrupt image and a train image leaked into val."""
    root = tmp_path_factory.mktemp("corpus")
    with ShardWriter(root / "train", per_shard=10) as writer:
        for i in range(40):
            image = jpeg(i if i != 11 else 3)  # 11 copies 3
            writer.write(f"{i:04d}", {"jpg": image if i != 17 else b"\xff\xd8broken", "txt": f"item {i}".encode()})
    with ShardWriter(root / "val", per_shard=10) as writer:
        for i in range(8):
            writer.write(f"v{i:03d}", {"jpg": jpeg(100 + i if i != 2 else 5), "txt": f"val {i}".encode()})
    cfg = DataConfig(root=str(root), train="train/shard-{000000..000003}.tar", val="val/shard-000000.tar",
                     format="shards", probe_media=False)  # the audit finds the corrupt image
    return root, cfg


def audit(corpus: tuple[Path, DataConfig], name: str, pool: ItemPool) -> AuditReport:
    root, cfg = corpus
    return run_audit(load_bundle(cfg, label_type="none"), cfg, modality="alignment", out_dir=root / name, pool=pool)


@pytest.mark.slow  # starting the worker processes takes a few seconds
def test_process_pool_gives_the_single_process_audit(corpus: tuple[Path, DataConfig]) -> None:
    serial = audit(corpus, "serial", ItemPool(AuditConfig(workers=1)))
    clean = serial.result("cleanliness").measured
    assert (clean["exact_duplicates"], clean["leaked"], clean["corrupt"]) == (1, 1, 1)
    pooled = audit(corpus, "pooled", ItemPool(AuditConfig(workers=2, chunk_size=4, min_items=0)))
    assert audit_outcome(pooled) == audit_outcome(serial)


@pytest.mark.slow
def test_dask_cluster_gives_the_single_process_audit(corpus: tuple[Path, DataConfig]) -> None:
    distributed = pytest.importorskip("distributed", reason="the cluster extra (dask.distributed) is not installed")
    serial = audit(corpus, "serial_d", ItemPool(AuditConfig(workers=1)))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        pool = ItemPool(AuditConfig(engine="dask", address=cluster.scheduler_address, chunk_size=8))
        assert audit_outcome(audit(corpus, "dask", pool)) == audit_outcome(serial)
        assert "run_chunk" in cluster.scheduler.task_prefixes  # the chunks ran as the cluster's tasks


def test_workers_setting_is_checked() -> None:
    assert resolve_workers("auto") >= 1 and resolve_workers(3) == 3
    with pytest.raises(FrameworkError, match="audit.workers"):
        resolve_workers("many")
    with pytest.raises(FrameworkError, match="audit.engine"):
        ItemPool(AuditConfig(engine="spark"))


SCRIPT = '''
import os, sys
import neighbour  # beside the script: the forkserver needs the script's sys.path to import it
with open(sys.argv[1] if __name__ == "__main__" else os.environ["IMPORTS_LOG"], "a") as log:
    log.write(f"{__name__} {os.getpid()}\\n")
from framework.data.fingerprints import normalise_text
from framework.data.parallel import AuditConfig, ItemPool

if __name__ == "__main__":
    pool = ItemPool(AuditConfig(workers=2, chunk_size=1, min_items=0))
    for _ in range(2):  # two maps: two sets of workers, forked from one forkserver
        assert pool.map(normalise_text, ["A, b!"] * 6) == ["a b"] * 6
'''


@pytest.mark.slow  # starts a Python process and a forkserver
def test_workers_do_not_rerun_the_main_script(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "neighbour.py").write_text("")
    log = tmp_path / "imports.log"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "IMPORTS_LOG": str(log)}
    subprocess.run([sys.executable, str(tmp_path / "script.py"), str(log)], check=True, env=env, timeout=300)
    names = [line.split()[0] for line in log.read_text().splitlines()]
    assert names == ["__main__", "__mp_main__"]  # the script, then the forkserver once; no worker ran it


def test_chunks_leave_every_worker_several_tasks() -> None:
    pool = ItemPool(AuditConfig(workers=4, chunk_size=64))
    assert pool.chunk_for(100_000) == 64  # many items: the configured size
    assert pool.chunk_for(1000) == 32  # 1000 / (4 workers x 8 tasks), rounded up
    assert pool.chunk_for(3) == 1
