"""The speech modality: speech recognition with openai-whisper, code-switching aware.

``python -m framework +modality=speech`` trains a tiny Whisper (built from ``ModelDimensions``) on
the bundled code-switched Hindi-English corpus; ``model=whisper model.name=small`` fine-tunes a
released checkpoint. See ``conf/modality/speech.yaml`` for every setting and
:mod:`plugins.speech.config` for what each one means.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from torch import nn

from framework import split_shards, train_stream
from framework.data.records import DataBundle, Quarantined, Record
from framework.errors import FrameworkError
from framework.evaluation.types import EvalReport, Predictions
from framework.modality import Modality, RunContext, StashKey
from plugins._bundled import resolve_root, split_defaults, with_root
from plugins.speech import evaluate as speech_eval
from plugins.speech.audio import AudioStore
from plugins.speech.checks import AUDIO_INFO_KEY, WINDOW_KEY
from plugins.speech.config import SpeechConfig, SpeechModelConfig
from plugins.speech.dataset import SpeechDataset, UtteranceDecoder, WaveAugment, check_languages, record_language
from plugins.speech.langid import check_eval_language
from plugins.speech.export import SERVING_INFO, export_model, serving_info
from plugins.speech.features import SpecAugment
from plugins.speech.formats import dims_from_hf_config, model_format
from plugins.speech.loop import train_asr
from plugins.speech.model import build_whisper, configure_training, window_seconds
from plugins.speech.segments import parse_cues, split_record, subtitle_file, vet_cues
from plugins.speech.task import SpeechRecognitionTask

if TYPE_CHECKING:
    from framework.training import Engine

log = logging.getLogger(__name__)

CONF_FILE = Path(__file__).parent / "conf" / "modality" / "speech.yaml"
STORE_KEY = StashKey[AudioStore]("speech.store")  # the run's audio cache, shared by the methods
Ctx = RunContext[SpeechConfig, SpeechModelConfig]


def _labeled(records: list[Record]) -> list[Record]:
    return [r for r in records if r.label is not None]


def model_window_seconds(model_cfg: Any) -> float:
    """The model's window in seconds without building it (30 s for released checkpoints)."""
    from whisper.model import ModelDimensions

    if model_cfg.name:
        config = Path(str(model_cfg.name)).expanduser() / "config.json"
        if config.is_file() and model_format(config.parent) == "transformers":
            return window_seconds(dims_from_hf_config(json.loads(config.read_text(encoding="utf-8"))))
        return 30.0  # released checkpoints and CTranslate2 directories
    if not model_cfg.dims:
        return 30.0
    return window_seconds(ModelDimensions(**dict(model_cfg.dims)))


def segment_long_records(bundle: DataBundle, max_seconds: float, allow_outside_root: bool = False,
                         store: AudioStore | None = None) -> int:
    """Replace records that carry an SRT/VTT transcript by one record per segment (in place);
    returns how many records were split."""
    split_count = 0
    for split, records in bundle.splits.items():
        out: list[Record] = []
        for record in records:
            cues_path = subtitle_file(record, bundle.root, allow_outside_root)
            if cues_path is None:
                out.append(record)
                continue
            info = store.info.get(str(record.media)) if store is not None else None
            cues, problems = vet_cues(parse_cues(cues_path), cues_path, info.duration if info else None)
            for problem in problems:
                log.warning("subtitles: %s", problem)
            out.extend(split_record(record, cues, max_seconds))
            split_count += 1
        bundle.splits[split] = out
    return split_count


def quarantine_duration_mismatches(bundle: DataBundle, store: AudioStore, tolerance: float) -> int:
    """Move records whose file is much shorter or longer than the manifest's ``duration`` into the
    quarantine (reason ``duration_mismatch``); returns how many."""
    moved = 0
    for split, records in bundle.splits.items():
        keep = []
        for record in records:
            info = store.info.get(str(record.media))
            stated = record.fields.get("duration")
            if info is None or record.fields.get("offset") is not None or not isinstance(stated, (int, float)):
                keep.append(record)
                continue
            if abs(info.duration - stated) > max(0.1, tolerance * stated):
                bundle.quarantine.append(Quarantined(
                    record.source, "duration_mismatch",
                    f"{record.media}: decodes to {info.duration:.2f} s at {info.samplerate} Hz but the manifest says "
                    f"{stated:.2f} s (wrong sample rate in the header, or a wrong manifest line); re-export the file "
                    f"or fix 'duration'", record.id))
                moved += 1
                continue
            keep.append(record)
        bundle.splits[split] = keep
    return moved


def fill_durations(bundle: DataBundle, store: AudioStore) -> None:
    """Give records without a ``duration`` (layouts that do not state one) the decoded length,
    for duration bucketing and the audit; called by ``load_data`` after decoding."""
    for record in bundle.records():
        info = store.info.get(str(record.media))
        if info is not None and record.fields.get("duration") is None and record.fields.get("offset") is None:
            record.fields["duration"] = round(info.duration, 3)


class SpeechModality(Modality[SpeechConfig, SpeechModelConfig]):
    """Speech recognition: decode once to 16 kHz mono, train Whisper on the engine with the
    utterance's language token, report WER/CER per language, at switch points, per slice and in noise."""

    name: ClassVar[str] = "speech"
    description: ClassVar[str] = "speech recognition with openai-whisper (code-switched transcripts, per-language WER)"
    label_type: ClassVar[str] = "text"
    sections: ClassVar[Mapping[str, type]] = {"modality": SpeechConfig, "model": SpeechModelConfig}

    # --- data --------------------------------------------------------------------------------

    def load_data(self, ctx: Ctx) -> DataBundle:
        """Read NeMo manifests with the core reader, decoding every file once to 16 kHz.

        The reader's decoding check is this plugin's decoder: the decode that proves a file usable
        also resamples and caches it; undecodable and silent files are quarantined with the reason.
        Files whose length disagrees with the manifest are quarantined as ``duration_mismatch``;
        long recordings with SRT/VTT transcripts become utterances of at most the model's window.
        """
        from framework.data.loading import load_bundle

        cfg = ctx.modality
        check_languages([], cfg.language)  # an unknown default language fails before any decoding
        check_eval_language(cfg.eval_language, cfg.language_candidates)
        store = AudioStore(cfg.audio.normalize, cfg.audio.cache_limit_mb, cfg.audio.loudness_dbfs)
        data_cfg = with_root(ctx.data, resolve_root(ctx.data.root))
        probe = store.probe if getattr(data_cfg, "probe_media", True) else None
        # format "speech": any speech layout, chosen from the files, when data.format=auto
        bundle = load_bundle(data_cfg, format="speech", decoder_check=probe, label_type="text",
                             split_defaults=split_defaults(CONF_FILE))
        window = model_window_seconds(ctx.model)
        check_languages(bundle.records(), cfg.language)
        segmented = segment_long_records(bundle, window, data_cfg.allow_outside_root, store)
        mismatched = quarantine_duration_mismatches(bundle, store, cfg.audio.duration_tolerance)
        fill_durations(bundle, store)
        bundle.extras[AUDIO_INFO_KEY] = store.info
        bundle.extras[WINDOW_KEY] = window
        if split_shards(bundle, "train"):  # streamed by train: its probed audio is not kept
            store.release(bundle.records("train"))
        ctx.stash[STORE_KEY] = store
        rates = Counter(info.samplerate for info in store.info.values())
        log.info("decoded %d audio files to 16 kHz mono (source rates %s), %.1f MB cached; %d long recordings "
                 "segmented, %d duration mismatches quarantined", len(store.info), dict(rates),
                 store.cached_bytes / 2**20, segmented, mismatched)
        return bundle

    def _store(self, ctx: Ctx) -> AudioStore:
        store = ctx.stash.get(STORE_KEY)
        if store is None:
            audio = ctx.modality.audio
            store = AudioStore(audio.normalize, audio.cache_limit_mb, audio.loudness_dbfs)
            ctx.stash[STORE_KEY] = store
        return store

    # --- task --------------------------------------------------------------------------------

    def build_task(self, ctx: Ctx, data: DataBundle) -> nn.Module:
        """Whisper (released, local or from dims), trainable per ``model.finetune``, with its
        features, SpecAugment and loss."""
        cfg = ctx.modality
        mcfg = ctx.model
        whisper_model = build_whisper(mcfg)
        module = configure_training(whisper_model, mcfg.finetune, mcfg.freeze_encoder_blocks, mcfg.lora)
        sa = cfg.spec_augment
        spec = SpecAugment(sa.freq_masks, sa.freq_width, sa.time_masks, sa.time_width, sa.max_time_fraction)
        task = SpeechRecognitionTask(module, whisper_model.dims, spec, timestamps=cfg.timestamps)
        # Beside the checkpoints, so that any checkpoint of this run can be loaded for transcription.
        serving_info(task, mcfg, cfg).write(ctx.path(SERVING_INFO))
        return task

    def _dataset(self, ctx: Ctx, task: SpeechRecognitionTask, records: list[Record],
                 augment: WaveAugment | None = None) -> SpeechDataset:
        return SpeechDataset(records, self._store(ctx), task.window, ctx.modality.language, augment,
                             task.timestamps, task.num_languages)

    # --- training ----------------------------------------------------------------------------

    def train(self, ctx: Ctx, engine: "Engine", task: nn.Module, data: DataBundle) -> None:
        """Teacher forcing on ``train`` (SpecAugment and waveform augmentation as configured),
        validating on ``val`` (loss, token accuracy, and WER when ``modality.val_wer_every``).

        A train split read from tar shards is streamed (:func:`framework.train_stream`): each
        loader worker decodes its samples as it hands them out, so no utterance is held for the
        whole epoch; ``modality.bucket_by_duration`` needs the whole split and is refused there."""
        cfg = ctx.modality
        aug = cfg.augment
        augment = WaveAugment(tuple(aug.speed), aug.speed_prob, tuple(aug.noise_snr_db), aug.noise_prob)
        stream = train_stream(ctx, data, UtteranceDecoder(
            task.window, cfg.language, cfg.audio.normalize, cfg.audio.loudness_dbfs, augment, task.timestamps,
            task.num_languages))
        train_set: Any
        if stream is not None:
            if cfg.bucket_by_duration:
                raise FrameworkError("modality.bucket_by_duration sorts the whole train split by duration, but "
                                     "data.train names tar shards, which are streamed; set modality.bucket_by_duration=false")
            train_set = stream
        else:
            train_records = _labeled(data.records("train"))
            if not train_records:
                raise FrameworkError("the train split has no transcribed utterances (check data.train)")
            train_set = self._dataset(ctx, task, train_records, augment)
        val_records = _labeled(data.records("val"))
        val_set = self._dataset(ctx, task, val_records) if val_records else None
        wer_fn = None
        if cfg.val_wer_every and val_records:
            def wer_fn() -> float:
                hyps = speech_eval.hypotheses(task, val_records, self._store(ctx), cfg)
                return speech_eval.score_split(val_records, hyps, cfg).overall.rate
        train_asr(engine, task, train_set, val_set, eval_batch_size=cfg.eval_batch_size,
                  bucket_by_duration=cfg.bucket_by_duration, val_wer=wer_fn)

    # --- prediction and evaluation -----------------------------------------------------------

    def predict(self, ctx: Ctx, task: nn.Module, records: list[Record], split: str) -> Predictions:
        """Transcripts (``outputs``) of ``records``, each decoded with its language token;
        references are optional."""
        cfg = ctx.modality
        hyps = speech_eval.hypotheses(task, records, self._store(ctx), cfg)
        return Predictions(
            split=split, ids=[r.id for r in records],
            targets=[None if r.label is None else str(r.label) for r in records], outputs=hyps,
            slices=[dict(r.slices) for r in records],
            extras={"languages": [record_language(r, cfg.language) for r in records]},
        )

    def evaluate(self, ctx: Ctx, task: nn.Module, data: DataBundle, split: str) -> EvalReport:
        """WER and CER; WER per language, on code-switched utterances and at switch points; per
        slice; under noise at ``modality.robustness_snr_db``. Writes ``eval/hypotheses_<split>.csv``."""
        cfg = ctx.modality
        records = _labeled(data.records(split))
        if not records:
            raise FrameworkError(f"split {split!r} has no transcribed utterances to evaluate")
        predictions = self.predict(ctx, task, records, split)
        return speech_eval.evaluation_report(task, records, predictions, self._store(ctx), cfg, ctx.run_dir,
                                             seed=ctx.seed)

    # --- monitoring --------------------------------------------------------------------------

    def drift_features(self, ctx: Ctx, records: list[Record]) -> dict[str, list[Any]]:
        """Per utterance: ``duration`` (s) and RMS ``level_dbfs`` of the utterance (its
        ``offset``/``duration`` within the file), ``silence`` at the file's edges (s), the file's
        ``sample_rate`` and ``channels``, and the primary ``language``. Files that cannot be read
        get ``None`` (except the language, which comes from the manifest)."""
        import numpy as np

        from plugins.speech.audio import describe, read_file, to_mono

        out: dict[str, list[Any]] = {k: [] for k in ("duration", "level_dbfs", "silence", "sample_rate", "channels",
                                                     "language")}
        for record in records:
            out["language"].append(str(record.fields.get("language") or ctx.modality.language))
            try:
                samples, rate = read_file(Path(record.media))
            except Exception:  # noqa: BLE001 - unreadable audio is a None, not a failed monitor
                for key in ("duration", "level_dbfs", "silence", "sample_rate", "channels"):
                    out[key].append(None)
                continue
            info = describe(samples, rate)
            mono = to_mono(samples)
            if record.fields.get("offset") is not None or record.fields.get("duration") is not None:
                start = int(round(float(record.fields.get("offset") or 0.0) * rate))
                length = record.fields.get("duration")
                mono = mono[start:] if length is None else mono[start:start + int(round(float(length) * rate))]
            rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2))) if mono.size else 0.0
            out["duration"].append(mono.size / rate)
            out["level_dbfs"].append(20 * np.log10(max(rms, 1e-12)))
            out["silence"].append(info.lead_silence + info.trail_silence)
            out["sample_rate"].append(str(rate))
            out["channels"].append(str(info.channels))
        return out

    # --- export ------------------------------------------------------------------------------

    def export(self, ctx: Ctx, task: nn.Module, out_dir: Path) -> list[Path]:
        """``model.pt`` (``whisper.load_model`` loads it), weights (safetensors), config and ``speech.json``;
        ``transformers/`` and ``ctranslate2/`` for the runtimes ``modality.export_formats`` names."""
        cfg = ctx.modality
        return export_model(task, serving_info(task, ctx.model, cfg), out_dir, ctx.config_yaml,
                            list(cfg.export_formats), str(cfg.ctranslate2_quantization))
