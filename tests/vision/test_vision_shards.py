"""Vision trains streaming from tar shards: a few steps, a mid-epoch resume on exactly the remaining
items, no item twice across 2 ranks x 2 loader workers, a corrupt member quarantined with its reason;
the audit of the shards reads each image once, on the audit's pool."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework import train_stream
from framework.data.audit import run_audit
from framework.data.parallel import AuditConfig, ItemPool
from framework.data.shards import ShardWriter
from framework.data.stream import ShardStream, read_stream_quarantine
from plugins.vision.checks import HEADER_INFO_KEY, quality_checks
from plugins.vision.dataset import ClassDecoder
from plugins.vision.modality import STORE_KEY, VisionModality
from shard_checks import train_steps, WithId, assert_resume_continues, audit_outcome, ids_across_ranks, record_decoded
from vision_fixtures import COLOURS, context, trainer_config

BAD = "shard-000001/0009"  # the corrupt member's id


def png(colour: tuple[int, int, int], rng: np.random.Generator) -> bytes:
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def write_shards(root: Path, n: int = 48, per_shard: int = 6, corrupt: bool = True) -> str:
    """``n`` coloured squares (``KEY.png`` + ``KEY.cls``) in shards of ``per_shard``, one of them
    (:data:`BAD`) a corrupt PNG when ``corrupt``; val as one shard. Returns the train spec."""
    rng = np.random.default_rng(0)
    names = list(COLOURS)
    with ShardWriter(root / "train", per_shard=per_shard) as writer:
        for i in range(n):
            name = names[i % len(names)]
            image = b"\x89PNG\r\n\x1a\n not a png" if corrupt and i == 9 else png(COLOURS[name], rng)
            writer.write(f"{i:04d}", {"png": image, "cls": name.encode()})
    with ShardWriter(root / "val", per_shard=100) as val:
        for i, name in enumerate(names * 2):
            val.write(f"v{i:03d}", {"png": png(COLOURS[name], rng), "cls": name.encode()})
    (root / "datacard.yaml").write_text("sources: [coloured squares drawn by tests/vision/test_vision_shards.py]\n")
    return writer.spec()


@pytest.fixture
def shard_root(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "shards"
    return root, write_shards(root)


def shard_ctx(root: Path, spec: str, run_dir: Path):  # type: ignore[no-untyped-def]
    # probe_media=false: nothing is decoded while loading, so the corrupt member reaches the stream
    return context(root, run_dir, data={"train": spec, "val": "val/shard-000000.tar", "test": None,
                                        "probe_media": False})


@pytest.mark.slow  # three short trainings
def test_trains_from_shards_and_resumes_mid_epoch_on_exactly_the_remaining_items(
        shard_root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, spec = shard_root
    seen = record_decoded(monkeypatch, ClassDecoder)
    data = VisionModality().load_data(shard_ctx(root, spec, tmp_path / "full"))
    assert data.counts() == {"train": 48, "val": 6} and data.classes == sorted(COLOURS)

    def train(steps: int, run: str) -> None:
        cfg = trainer_config(max_steps=steps, batch_size=4, checkpoint_every=3, resume="auto")
        train_steps(VisionModality(), shard_ctx(root, spec, tmp_path / run), data, cfg)

    full = assert_resume_continues(train, seen, batch_size=4, cut=6, end=10)  # 12 batches per epoch
    assert BAD not in full
    [entry] = read_stream_quarantine(tmp_path / "full" / "data")
    assert entry["id"] == BAD and entry["reason"] == "undecodable" and "UnidentifiedImageError" in entry["detail"]
    assert entry["source"].endswith("shard-000001.tar:0009")


def test_two_ranks_two_workers_stream_every_item_once(tmp_path: Path) -> None:
    # every member decodes: a stream short of a quarantined item repeats one to keep the ranks in step
    root = tmp_path / "shards"
    spec = write_shards(root, corrupt=False)
    ctx = shard_ctx(root, spec, tmp_path / "run")
    data = VisionModality().load_data(ctx)
    decoder = WithId(ClassDecoder((16, 16), "stretch", data.classes))

    def make() -> ShardStream:
        stream = train_stream(ctx, data, decoder)
        assert stream is not None
        return stream

    ranks = ids_across_ranks(make, world_size=2, num_workers=2)  # 8 shards for 4 streams
    everything = [i for ids in ranks for i in ids]
    assert len(ranks[0]) == len(ranks[1])  # the ranks stay in step
    assert len(everything) == len(set(everything))  # no item twice
    assert len(everything) == 48


def test_an_unknown_class_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    with ShardWriter(tmp_path, per_shard=10) as writer:
        writer.write("0000", {"png": png(COLOURS["red"], rng), "cls": b"purple"})
    stream = ShardStream(writer.paths, ClassDecoder((16, 16), "stretch", sorted(COLOURS)), report_dir=tmp_path / "q")
    with pytest.raises(RuntimeError, match="every sample failed"):
        list(stream)
    [entry] = read_stream_quarantine(tmp_path / "q")
    assert "class 'purple' is not one of the model's 3 classes" in entry["detail"]


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])  # worker start-up: seconds
def test_audit_of_shards_reads_each_image_once_on_the_pool(shard_root, tmp_path: Path, workers: int) -> None:
    root, spec = shard_root
    ctx = shard_ctx(root, spec, tmp_path / "run")
    data = VisionModality().load_data(ctx)
    pool = ItemPool(AuditConfig(workers=workers, chunk_size=8, min_items=0))
    report = run_audit(data, ctx.data, modality="vision", extra_checks=quality_checks(), out_dir=tmp_path / "audit",
                       label_type="class", pool=pool)
    headers = data.extras[HEADER_INFO_KEY]  # read once on the pool, shared by both checks
    assert len(headers) == 54 and headers[str(next(r.media for r in data.records() if r.id == BAD))] is None
    assert report.result("cleanliness").measured["corrupt"] == 1
    assert report.result("image_modes").passed and report.result("image_resolution").passed
    if workers > 1:
        serial = run_audit(VisionModality().load_data(ctx), ctx.data, modality="vision", extra_checks=quality_checks(),
                           out_dir=tmp_path / "serial", label_type="class", pool=ItemPool(AuditConfig(workers=1)))
        assert audit_outcome(report) == audit_outcome(serial)


def test_pixels_probed_while_loading_are_kept_for_val_only(tmp_path: Path) -> None:
    root = tmp_path / "shards"
    spec = write_shards(root, corrupt=False)
    ctx = context(root, tmp_path / "run", data={"train": spec, "val": "val/shard-000000.tar", "test": None})
    data = VisionModality().load_data(ctx)  # data.probe_media: every image decoded once
    store = ctx.stash[STORE_KEY]
    assert len(store.info) == 54  # all probed
    assert store.cached_bytes == 6 * 16 * 16 * 3  # the train split is streamed: only val's pixels are kept
    assert data.counts() == {"train": 48, "val": 6}
