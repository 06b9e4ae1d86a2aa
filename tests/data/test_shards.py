"""Tar shards: naming, reading into records, and the streaming dataset's split, order and resume."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from framework.data.config import DataConfig
from framework.data.errors import DataError
from framework.data.loading import load_bundle
from framework.data.probes import probe_image
from framework.data.shards import ShardWriter, expand_shards, media_bytes, split_member
from framework.data.stream import ShardStream, read_stream_quarantine, round_robin


def png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), i % 251, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write(folder: Path, n: int, per_shard: int, bad: dict[int, dict[str, bytes]] | None = None) -> ShardWriter:
    with ShardWriter(folder, per_shard=per_shard) as writer:
        for i in range(n):
            writer.write(f"{i:04d}", (bad or {}).get(i, {"png": png(i), "txt": f"caption {i}".encode()}))
    return writer


def ids(sample) -> str:  # the decoder of these tests: the item is its id
    return sample.id


def epoch(stream: ShardStream, workers: int, batch: int = 4, consumed: int = 0) -> list[list[str]]:
    stream.start(0, consumed)
    return list(DataLoader(stream, batch_size=batch, num_workers=workers, collate_fn=list))


def test_brace_range_folder_and_missing_shard(tmp_path: Path) -> None:
    writer = write(tmp_path / "s", 30, 10)
    assert expand_shards(writer.spec()) == writer.paths
    assert expand_shards(tmp_path / "s") == writer.paths
    assert expand_shards("s/shard-{000000..000001}.tar", tmp_path) == writer.paths[:2]
    with pytest.raises(DataError, match="1 of 4 shard"):
        expand_shards(str(tmp_path / "s" / "shard-{000000..000003}.tar"))


def test_reader_quarantines_samples_without_caption_or_transcript(tmp_path: Path) -> None:
    write(tmp_path / "train", 12, 5, bad={3: {"png": png(3)}, 7: {"wav": b"RIFF"}, 9: {"cls": b"x", "png": png(9)}})
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="train/shard-{000000..000002}.tar"))
    assert bundle.counts() == {"train": 10}
    reasons = {q.record_id: q.reason for q in bundle.quarantine}
    assert reasons == {"shard-000000/0003": "missing_caption", "shard-000001/0007": "missing_transcript"}
    assert all("add" in q.detail for q in bundle.quarantine)  # the reason says what to do
    first = bundle.records("train")[0]
    assert first.text == "caption 0" and first.fields["caption"] == "caption 0"
    assert split_member(first.media) == (tmp_path / "train" / "shard-000000.tar", "0000.png")
    assert media_bytes(first.media) == png(0) and probe_image(first.media).ok
    assert next(r for r in bundle.records() if r.id.endswith("0009")).label == "x"  # KEY.cls is the label


def test_two_ranks_two_workers_see_every_item_once(tmp_path: Path) -> None:
    writer = write(tmp_path, 96, 12)  # 8 shards for 4 streams
    seen: list[str] = []
    for rank in (0, 1):
        stream = ShardStream(writer.paths, ids, seed=3, buffer_size=5)
        stream.bind(batch_size=4, rank=rank, world_size=2, num_workers=2)
        batches = epoch(stream, 2)
        assert len(batches) == stream.batches_per_epoch() == 12
        seen += [i for b in batches for i in b]
    assert len(seen) == 96 and len(set(seen)) == 96
    again = ShardStream(writer.paths, ids, seed=3, buffer_size=5)
    again.bind(batch_size=4, rank=0, world_size=2, num_workers=2)
    again.start(1)
    assert [i for b in DataLoader(again, batch_size=4, num_workers=2, collate_fn=list) for i in b] != seen[:48]


def test_fewer_shards_than_streams_still_split_by_sample(tmp_path: Path) -> None:
    writer = write(tmp_path, 30, 10)  # 3 shards for 4 streams
    seen = []
    for rank in (0, 1):
        stream = ShardStream(writer.paths, ids, seed=0)
        stream.bind(batch_size=3, rank=rank, world_size=2, num_workers=2)
        seen += [i for b in epoch(stream, 2, batch=3) for i in b]
    assert sorted(seen) == sorted(f"shard-{i // 10:06d}/{i:04d}" for i in range(30))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_yields_exactly_the_remaining_batches(tmp_path: Path, workers: int) -> None:
    writer = write(tmp_path, 70, 10)  # uneven: the workers' last batches differ
    stream = ShardStream(writer.paths, ids, seed=5, buffer_size=8)
    stream.bind(batch_size=4, num_workers=workers)
    full = epoch(stream, workers)
    for consumed in (1, 5, len(full) - 1):
        assert epoch(stream, workers, consumed=consumed) == full[consumed:]
    state = stream.state_dict(5)
    assert state["layout"]["num_workers"] == workers and sum(state["items_handed_out_per_worker"]["0"]) == 20
    assert stream.check_resume(state, 5) is None
    other = ShardStream(writer.paths, ids, seed=5)
    other.bind(batch_size=4, num_workers=workers + 1)
    assert "num_workers" in other.check_resume(state, 5)
    assert other.check_resume(state, 0) is None  # an epoch boundary may change the layout


def test_ranks_take_the_same_number_of_batches(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, per_shard=30) as writer:  # shard sizes 30, 30, 5, 5
        for i in range(70):
            writer.write(f"{i:04d}", {"png": png(i), "txt": b"c"})
    counts = []
    for rank in (0, 1):
        stream = ShardStream(writer.paths, ids, shuffle=False)
        stream.bind(batch_size=5, rank=rank, world_size=2, drop_last=True)
        counts.append(len(epoch(stream, 0, batch=5)))
    assert counts[0] == counts[1] == stream.batches_per_epoch()


def test_undecodable_member_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    writer = write(tmp_path / "s", 20, 10, bad={4: {"png": b"not a png", "txt": b"c"}})

    def decode(sample):
        Image.open(io.BytesIO(sample.data["png"])).load()
        return sample.id

    stream = ShardStream(writer.paths, decode, seed=1, report_dir=tmp_path / "report")
    stream.bind(batch_size=5)
    items = [i for b in epoch(stream, 0, batch=5) for i in b]
    assert len(items) == 20 and "shard-000000/0004" not in items  # its place is filled
    report = read_stream_quarantine(tmp_path / "report")
    assert [(r["id"], r["reason"]) for r in report] == [("shard-000000/0004", "undecodable")]
    assert "UnidentifiedImageError" in report[0]["detail"]
    again = [i for b in epoch(stream, 0, batch=5, consumed=2) for i in b]
    assert again == items[10:]  # a resume knows the quarantined sample and skips it again
    assert json.loads((tmp_path / "report" / "stream_quarantine.rank0.worker0.jsonl").read_text())["epoch"] == 0


def test_round_robin_follows_the_dataloader_turns() -> None:
    assert round_robin([3, 1], 4) == ([3, 1], 1)
    assert round_robin([3, 1], 3) == ([2, 1], 1)
    assert round_robin([2, 2], 1) == ([1, 0], 1)


def test_media_inside_shards_decode_like_files(tmp_path: Path) -> None:
    import soundfile as sf

    from framework.data.probes import probe_audio
    from framework.media.images import decode_image

    wav = io.BytesIO()
    sf.write(wav, np.sin(np.linspace(0, 200, 1600)).astype("float32"), 16000, format="WAV")
    with ShardWriter(tmp_path, per_shard=4) as writer:
        writer.write("a", {"wav": wav.getvalue(), "txt": b"hello"})
        writer.write("b", {"png": png(1), "cls": b"circle"})
    bundle = load_bundle(DataConfig(root=str(tmp_path), train=str(writer.paths[0])), label_type="class")
    audio, image = bundle.records("train")
    assert audio.label == "hello" and probe_audio(audio.media).info["frames"] == 1600
    assert bundle.classes == ["circle", "hello"]  # a mixed shard: both kinds of label
    pixels, info = decode_image(image.media, (4, 4))
    assert pixels.shape == (4, 4, 3) and info.format == "PNG"
    missing = probe_image(writer.paths[0] / "zzz.png")
    assert missing.reason == "missing_file"


def test_probe_quarantines_a_corrupt_member_while_listing(tmp_path: Path) -> None:
    write(tmp_path / "s", 6, 3, bad={2: {"png": b"\x89PNG broken", "txt": b"c"}})
    cfg = DataConfig(root=str(tmp_path), train="s/shard-{000000..000001}.tar")
    probed = load_bundle(cfg)
    assert [(q.record_id, q.reason) for q in probed.quarantine] == [("shard-000000/0002", "undecodable")]
    assert "shard-000000.tar/0002.png" in probed.quarantine[0].detail
    cfg.probe_media = False
    assert load_bundle(cfg).counts() == {"train": 6}  # left to the audit and to training


def test_rewriting_a_shard_changes_the_data_fingerprint(tmp_path: Path) -> None:
    import os

    from framework.data.version import split_fingerprint

    writer = write(tmp_path, 4, 4)
    cfg = DataConfig(root=str(tmp_path), train=str(writer.paths[0]), probe_media=False)
    before = split_fingerprint(load_bundle(cfg).records())
    os.utime(writer.paths[0], ns=(1, 1))  # same bytes, another modification time: a rewritten shard
    assert split_fingerprint(load_bundle(cfg).records()) != before
