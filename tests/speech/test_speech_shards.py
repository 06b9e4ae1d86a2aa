"""Speech trains streaming from tar shards: a few steps, a mid-epoch resume on exactly the remaining
items, no item twice across 2 ranks x 2 loader workers, bad members quarantined with their reason;
the audit of the shards decodes each clip once, on the audit's pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework import train_stream
from framework.data.audit import run_audit
from framework.data.parallel import AuditConfig, ItemPool
from framework.data.shards import ShardWriter
from framework.data.stream import ShardStream, read_stream_quarantine
from framework.errors import FrameworkError
from plugins.speech.checks import DECODED_INFO_KEY, quality_checks
from plugins.speech.dataset import UtteranceDecoder
from plugins.speech.modality import STORE_KEY, SpeechModality
from shard_checks import train_steps, WithId, assert_resume_continues, audit_outcome, ids_across_ranks, record_decoded
from speech_fixtures import CORPUS, context, trainer_config

BAD = "shard-000001/0005"  # the corrupt member's id
WINDOW = 16000 * 2  # the tiny dims' window: 2 s at 16 kHz


def write_shards(root: Path, n: int = 16, per_shard: int = 4, corrupt: bool = True) -> str:
    """The first ``n`` train utterances of the bundled corpus as shards (``KEY.ogg`` + ``KEY.txt`` +
    ``KEY.json`` with the language and speaker), one (:data:`BAD`) corrupt when ``corrupt``; three
    val utterances as one shard. Returns the train spec."""
    def rows(split: str, count: int) -> list[dict]:
        return [json.loads(line) for line in (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]]

    def members(row: dict, audio: bytes | None = None) -> dict[str, bytes]:
        meta = {"language": row["language"], "speaker": row["speaker"]}
        return {"ogg": audio or (CORPUS / row["audio_filepath"]).read_bytes(), "txt": row["text"].encode(),
                "json": json.dumps(meta).encode()}

    with ShardWriter(root / "train", per_shard=per_shard) as writer:
        for i, row in enumerate(rows("train", n)):
            writer.write(f"{i:04d}", members(row, b"OggS but not a stream" if corrupt and i == 5 else None))
    with ShardWriter(root / "val", per_shard=100) as val:
        for i, row in enumerate(rows("val", 3)):
            val.write(f"v{i:03d}", members(row))
    (root / "datacard.yaml").write_bytes((CORPUS / "datacard.yaml").read_bytes())
    return writer.spec()


def shard_ctx(root: Path, spec: str, run_dir: Path, **modality):  # type: ignore[no-untyped-def]
    # probe_media=false: nothing is decoded while loading, so the corrupt member reaches the stream
    return context(root, run_dir, modality=modality, data={"train": spec, "val": "val/shard-000000.tar",
                                                           "test": None, "probe_media": False})


@pytest.mark.slow  # three short trainings
def test_trains_from_shards_and_resumes_mid_epoch_on_exactly_the_remaining_items(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "shards"
    spec = write_shards(root)
    seen = record_decoded(monkeypatch, UtteranceDecoder)
    data = SpeechModality().load_data(shard_ctx(root, spec, tmp_path / "full"))
    assert data.counts() == {"train": 16, "val": 3}

    def train(steps: int, run: str) -> None:
        cfg = trainer_config(max_steps=steps, batch_size=2, checkpoint_every=3, resume="auto", eval_every=0)
        train_steps(SpeechModality(), shard_ctx(root, spec, tmp_path / run), data, cfg)

    full = assert_resume_continues(train, seen, batch_size=2, cut=3, end=6)  # 8 batches per epoch
    assert BAD not in full
    [entry] = read_stream_quarantine(tmp_path / "full" / "data")
    assert entry["id"] == BAD and entry["reason"] == "undecodable" and entry["source"].endswith("shard-000001.tar:0005")


def test_two_ranks_two_workers_stream_every_item_once(tmp_path: Path) -> None:
    root = tmp_path / "shards"
    spec = write_shards(root, corrupt=False)  # a stream short of a quarantined item repeats one
    ctx = shard_ctx(root, spec, tmp_path / "run")
    data = SpeechModality().load_data(ctx)
    decoder = WithId(UtteranceDecoder(WINDOW, "en"))

    def make() -> ShardStream:
        stream = train_stream(ctx, data, decoder)
        assert stream is not None
        return stream

    ranks = ids_across_ranks(make, world_size=2, num_workers=2, batch_size=2)  # 4 shards for 4 streams
    everything = [i for ids in ranks for i in ids]
    assert len(ranks[0]) == len(ranks[1]) and len(everything) == len(set(everything)) == 16


def test_undecodable_audio_and_a_missing_transcript_are_quarantined_with_their_reason(tmp_path: Path) -> None:
    good = next((CORPUS / "audio" / "train").iterdir()).read_bytes()
    with ShardWriter(tmp_path, per_shard=10) as writer:
        writer.write("0000", {"ogg": b"OggS but not a stream", "txt": b"hello"})
        writer.write("0001", {"ogg": good, "json": b'{"language": "en"}'})  # no transcript anywhere
        writer.write("0002", {"ogg": good, "txt": b"hello there", "json": b'{"language": "en"}'})
    stream = ShardStream(writer.paths, WithId(UtteranceDecoder(WINDOW, "hi")), report_dir=tmp_path / "q")
    items = list(stream)
    assert [it["id"] for it in items] == ["shard-000000/0002"] * 3  # the stream keeps its length
    assert items[0]["audio"].shape == (WINDOW,) and items[0]["prompt_length"] > 0
    report = {e["id"]: e for e in read_stream_quarantine(tmp_path / "q")}
    assert report["shard-000000/0000"]["reason"] == "undecodable"
    assert "no transcript" in report["shard-000000/0001"]["detail"]


def test_bucketing_by_duration_is_refused_for_a_streamed_split(tmp_path: Path) -> None:
    root = tmp_path / "shards"
    spec = write_shards(root, n=4, corrupt=False)
    ctx = context(root, tmp_path / "run", modality={"bucket_by_duration": True},
                  data={"train": spec, "val": "val/shard-000000.tar", "test": None})
    modality = SpeechModality()
    data = modality.load_data(ctx)  # data.probe_media: every clip decoded once
    store = ctx.stash[STORE_KEY]
    assert len(store.info) == 7  # all probed
    val = [store.file(r.media).nbytes for r in data.records("val")]
    assert store.cached_bytes == sum(val)  # the train split is streamed: only val's audio is kept
    with pytest.raises(FrameworkError, match="bucket_by_duration=false"):
        modality.train(ctx, None, modality.build_task(ctx, data), data)  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])  # worker start-up: seconds
def test_audit_of_shards_decodes_each_clip_once_on_the_pool(tmp_path: Path, workers: int) -> None:
    root = tmp_path / "shards"
    ctx = shard_ctx(root, write_shards(root), tmp_path / "run")
    data = SpeechModality().load_data(ctx)
    pool = ItemPool(AuditConfig(workers=workers, chunk_size=4, min_items=0))
    report = run_audit(data, ctx.data, modality="speech", extra_checks=quality_checks(), out_dir=tmp_path / "audit",
                       label_type="text", pool=pool)
    decoded = data.extras[DECODED_INFO_KEY]  # decoded once on the pool, shared by every speech check
    assert len(decoded) == 19 and decoded[str(next(r.media for r in data.records() if r.id == BAD))] is None
    assert report.result("cleanliness").measured["corrupt"] == 1
    assert {r.name for r in report.results} >= {c.name for c in quality_checks()}
    if workers > 1:
        serial = run_audit(SpeechModality().load_data(ctx), ctx.data, modality="speech", extra_checks=quality_checks(),
                           out_dir=tmp_path / "serial", label_type="text", pool=ItemPool(AuditConfig(workers=1)))
        assert audit_outcome(report) == audit_outcome(serial)
