"""Training on the engine, the decoder prompt, evaluation, export and transcription, on a handful of utterances."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.data.records import Record
from framework.hookspecs import RunInfo
from framework.training import Engine
from plugins.speech import decode as decode_module
from plugins.speech.dataset import SpeechDataset
from plugins.speech.decode import transcribe
from plugins.speech.model import configure_training
from plugins.speech.modality import STORE_KEY, SpeechModality
from plugins.speech.tokens import tokenizer_for
from plugins.speech.transcribe import transcribe_folder
from speech_fixtures import copy_corpus, trainer_config, write_tone


def _train(ctx, data, **trainer):
    modality = SpeechModality()
    task = modality.build_task(ctx, data)
    info = RunInfo(run_dir=ctx.run_dir, modality="speech", name="test", config_yaml=ctx.config_yaml)
    with Engine(trainer_config(**trainer), info, seed=ctx.seed) as engine:
        modality.train(ctx, engine, task, data)
    return modality, task


def _metrics(run_dir: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["metrics"] for r in rows if r["kind"] == kind]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Whisper trained 30 steps on eight utterances, shared by the tests that only read it."""
    from speech_fixtures import context

    tmp = tmp_path_factory.mktemp("trained")
    root = copy_corpus(tmp / "corpus", {"train": 8, "val": 3, "test": 3})
    ctx = context(root, tmp / "run", data={"slices": ["speaker", "kind"]})
    data = SpeechModality().load_data(ctx)
    modality, task = _train(ctx, data)
    return ctx, data, modality, task, root


@pytest.mark.slow
def test_tiny_model_loss_falls_on_a_handful_of_utterances(trained) -> None:
    ctx, *_ = trained
    losses = [m["loss"] for m in _metrics(ctx.run_dir, "train")]
    assert len(losses) == 30
    assert losses[0] == pytest.approx(np.log(51865), rel=0.1)  # a sane start: uniform over the vocabulary
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    val = _metrics(ctx.run_dir, "val")
    assert val and val[-1]["val_loss"] < val[0]["val_loss"] and 0.0 <= val[-1]["val_token_acc"] <= 1.0


def test_decoder_prompt_carries_each_utterances_language_token(trained, monkeypatch) -> None:
    ctx, data, modality, task, _ = trained
    store = ctx.stash[STORE_KEY]
    records = data.records("train")
    dataset = SpeechDataset(records, store, task.window, "en")
    for i, record in enumerate(records):
        lang = record.fields["language"]
        tok = tokenizer_for(lang)
        head = dataset[i]["sequence"][:4]
        assert head == [tok.sot, tok.to_language_token(lang), tok.transcribe, tok.no_timestamps]
    # A record without a language field takes modality.language.
    bare = Record(id="x", split="train", source="t", media=records[0].media, label="hello", fields={})
    assert SpeechDataset([bare], store, task.window, "ta")[0]["sequence"][1] == tokenizer_for("ta").to_language_token("ta")
    # Decoding groups utterances by language: each call's options carry that group's language.
    seen: list[tuple[str, int]] = []
    real = decode_module.decode

    def spy(model, mel, options):
        seen.append((options.language, mel.shape[0]))
        return real(model, mel, options)

    monkeypatch.setattr(decode_module, "decode", spy)
    langs = [r.fields["language"] for r in records]
    out = transcribe(task.whisper(), [store.get(r) for r in records], langs, sample_len=4)
    assert len(out) == len(records)
    assert sorted(seen) == sorted((lang, langs.count(lang)) for lang in set(langs))


def test_evaluate_reports_wer_per_language_code_switching_slices_and_noise(trained) -> None:
    ctx, data, modality, task, _ = trained
    report = modality.evaluate(ctx, task, data, "test")
    m = report.metrics
    assert m["count"] == 3 and m["wer"] >= 0 and 0 <= m["cer"]
    assert {"wer_hi", "wer_en"} & set(m)
    assert set(report.robustness) == {"snr_10db"} and m["robust/snr_10db/wer"] == report.robustness["snr_10db"]["wer"]
    assert any(k.startswith("speaker=") for k in report.per_slice)
    assert any(k.startswith("primary_language=") for k in report.per_slice)
    [csv_path] = [ctx.run_dir / a for a in report.artifacts]
    with csv_path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["reference"] for r in rows] == [r.label for r in data.records("test")]
    assert list(rows[0]) == ["id", "language", "reference", "hypothesis", "wer", "audio"]
    # Robustness is seeded: the same noisy audio, the same figure.
    assert modality.evaluate(ctx, task, data, "test").robustness == report.robustness


def test_predict_works_unlabeled(trained) -> None:
    ctx, data, modality, task, _ = trained
    records = [Record(id=f"u{i}", split="new", source="t", media=r.media) for i, r in enumerate(data.records("val"))]
    preds = modality.predict(ctx, task, records, "new")
    assert preds.targets == [None, None, None] and len(preds.outputs) == 3
    assert all(isinstance(o, str) for o in preds.outputs)


def test_export_reloads_with_whisper_load_model_and_transcribes_the_same(trained, tmp_path) -> None:
    import whisper

    ctx, data, modality, task, _ = trained
    written = modality.export(ctx, task, tmp_path / "export")
    assert sorted(p.name for p in written) == ["config.yaml", "model.pt", "model.safetensors", "speech.json"]
    reloaded = whisper.load_model(str(tmp_path / "export" / "model.pt"), device="cpu")
    store = ctx.stash[STORE_KEY]
    records = data.records("val") + data.records("test")
    audio, langs = [store.get(r) for r in records], [r.fields["language"] for r in records]
    before = transcribe(task.whisper(), audio, langs, sample_len=12)
    assert transcribe(reloaded, audio, langs, sample_len=12) == before
    for key, value in task.whisper().state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)


def test_transcribe_folder_from_export_and_checkpoint(trained, tmp_path) -> None:
    ctx, data, modality, task, root = trained
    modality.export(ctx, task, tmp_path / "export")
    folder = root / "audio" / "test"
    (folder / "notes.txt").write_text("not audio")
    (folder / "zz_broken.wav").write_bytes(b"RIFF0000WAVEfmt garbage")
    write_tone(folder / "long" / "tone.flac", 7.0, 22050)  # longer than the 3.2 s window: two cuts joined
    out = transcribe_folder(tmp_path / "export", folder, tmp_path / "out.csv")
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == ["long/tone.flac", "test_0000.ogg", "test_0001.ogg", "test_0002.ogg",
                                         "zz_broken.wav"]
    assert rows[0]["duration"] == "7.000" and rows[0]["language"] == "hi"
    assert rows[-1]["error"] and not rows[-1]["text"]
    [ckpt] = sorted((ctx.run_dir / "checkpoints").iterdir())
    again = transcribe_folder(ckpt, folder, tmp_path / "again.csv")
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_finetune_modes_choose_what_trains(make_ctx, corpus) -> None:
    from plugins.speech.model import build_whisper

    def trainable(module):
        return {n for n, p in module.named_parameters() if p.requires_grad}

    ctx = make_ctx(corpus)
    decoder_only = configure_training(build_whisper(ctx.model), "decoder")
    assert trainable(decoder_only) and not any(n.startswith("encoder.") for n in trainable(decoder_only))
    frozen = configure_training(build_whisper(ctx.model), "full", freeze_encoder_blocks=1)
    assert not any(n.startswith(("encoder.blocks.0.", "encoder.conv")) for n in trainable(frozen))
    assert any(n.startswith("encoder.ln_post") for n in trainable(frozen))
    lora = configure_training(build_whisper(ctx.model), "lora", lora=ctx.model.lora)
    names = trainable(lora)
    assert names and all("lora_" in n for n in names)
    assert {n.split(".")[-4] for n in names} == {"query", "key", "value", "out"}


def test_lora_training_exports_merged_weights(make_ctx, corpus, tmp_path) -> None:
    import whisper

    ctx = make_ctx(corpus, model={"finetune": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}})
    data = SpeechModality().load_data(ctx)
    modality, task = _train(ctx, data, max_steps=3, lr=1e-2)
    modality.export(ctx, task, tmp_path / "export")
    reloaded = whisper.load_model(str(tmp_path / "export" / "model.pt"), device="cpu")
    store = ctx.stash[STORE_KEY]
    records = data.records("val")
    audio, langs = [store.get(r) for r in records], [r.fields["language"] for r in records]
    assert transcribe(reloaded, audio, langs, sample_len=8) == transcribe(task.whisper(), audio, langs, sample_len=8)
    assert not any("lora" in k for k in reloaded.state_dict())
    # A checkpoint of the run rebuilds the adapters from speech.json and loads the same weights.
    from plugins.speech.export import load_task

    [ckpt] = sorted((ctx.run_dir / "checkpoints").iterdir())
    from_ckpt, _ = load_task(ckpt)
    assert transcribe(from_ckpt.whisper(), audio, langs, sample_len=8) == transcribe(reloaded, audio, langs, sample_len=8)


def test_bucketed_batches_and_timestamps_train(make_ctx, corpus) -> None:
    ctx = make_ctx(corpus, modality={"bucket_by_duration": True, "timestamps": True,
                                     "augment": {"speed": [0.9, 1.1], "speed_prob": 1.0, "noise_snr_db": [10, 20],
                                                 "noise_prob": 1.0}})
    data = SpeechModality().load_data(ctx)
    modality, task = _train(ctx, data, max_steps=4)
    rows = _metrics(ctx.run_dir, "train")
    assert len(rows) == 4 and all(np.isfinite(r["loss"]) for r in rows)
    seq = SpeechDataset(data.records("train"), ctx.stash[STORE_KEY], task.window, "hi", timestamps=True)[0]["sequence"]
    tok = tokenizer_for("hi")
    assert seq[3] == tok.timestamp_begin and seq[-2] > tok.timestamp_begin and tok.no_timestamps not in seq


def test_beam_search_runs_through_whispers_decoder_and_decodes_every_utterance_in_its_language(trained, monkeypatch) -> None:
    ctx, data, _, task, _ = trained
    store = ctx.stash[STORE_KEY]
    records = data.records("train")
    langs = [r.fields["language"] for r in records]
    audio = [store.get(r) for r in records]
    results: dict[int | None, list] = {}
    real = decode_module.decode

    def spy(model, mel, options):
        out = real(model, mel, options)
        results.setdefault(options.beam_size, []).extend(out)
        return out

    monkeypatch.setattr(decode_module, "decode", spy)
    greedy = transcribe(task.whisper(), audio, langs, sample_len=12)
    beam = transcribe(task.whisper(), audio, langs, beam_size=4, sample_len=12)
    assert set(results) == {None, 4}  # greedy, then whisper's beam search with 4 beams
    assert len(beam) == len(greedy) == len(records) and all(isinstance(t, str) for t in beam)
    # Every utterance of every language was decoded (one at a time: whisper's batched beam search
    # fails), under its own language token, and the texts are the ones returned in input order.
    assert sorted(r.language for r in results[4]) == sorted(langs)
    by_lang = {lang: [t for t, l in zip(beam, langs) if l == lang] for lang in set(langs)}
    assert all(sorted(by_lang[lang]) == sorted(r.text.strip() for r in results[4] if r.language == lang)
               for lang in by_lang)
