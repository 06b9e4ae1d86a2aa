"""Speech-specific audit checks, contributed through ``framework_quality_checks``.

Warnings by default (``gate: false``): decoding normalises rate, channels and level, so most of
these findings are worth a look rather than a refusal to train. Settings live in
``data.gates.plugins.<check name>``; ``gate: true`` makes a failure stop the run.

Unreadable and silent files are quarantined while loading (:class:`plugins.speech.audio.AudioStore`),
exact/near duplicates, split leakage and empty transcripts are the core cleanliness gate's; these
checks add what only speech has.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from framework import media_infos
from framework.data.checks import CheckContext, CheckResult, Finding, check_settings
from framework.data.records import DataBundle, Record
from plugins.speech.audio import AudioInfo, describe, read_file

AUDIO_INFO_KEY = "audio_info"  # DataBundle.extras: media path -> AudioInfo, filled by load_data
DECODED_INFO_KEY = "audio_info.decoded"  # DataBundle.extras: media path -> AudioInfo the audit decoded
WINDOW_KEY = "speech.window_seconds"  # DataBundle.extras: the model's window in seconds
DEFAULT_WINDOW = 30.0


def file_info(path: str) -> AudioInfo | None:
    """What decoding an audio file (or shard member) tells; ``None`` for an unreadable one (the
    core gates' finding). Module-level, so it runs on the audit's pool."""
    try:
        return describe(*read_file(Path(path)))
    except Exception:  # soundfile and librosa raise many types for bad files
        return None


def audio_infos(data: DataBundle, ctx: CheckContext | None = None) -> dict[str, AudioInfo]:
    """Media path -> :class:`AudioInfo` of every record's file: from decoding when the speech
    plugin loaded the bundle, else decoded on the audit's pool (``ctx.pool``; in process without
    a context), once per bundle for every check."""
    return media_infos(data, file_info, cache_key=DECODED_INFO_KEY, known=data.extras.get(AUDIO_INFO_KEY),
                       pool=ctx.pool if ctx is not None else None)


def duration_of(record: Record, infos: Mapping[str, AudioInfo]) -> float | None:
    """The utterance's length: its ``duration`` field when it is a segment, else its file's."""
    if record.fields.get("offset") is not None and isinstance(record.fields.get("duration"), (int, float)):
        return float(record.fields["duration"])
    info = infos.get(str(record.media))
    return info.duration if info is not None else None


def _result(name: str, settings: Mapping[str, Any], flagged: dict[str, list[str]], explain: dict[str, str],
            total: int, summary: str, measured: dict[str, Any], override: str) -> CheckResult:
    findings = [Finding(kind, tuple(sorted(ids)), f"{len(ids)} item(s): {explain[kind]}")
                for kind, ids in flagged.items() if ids]
    bad = {i for ids in flagged.values() for i in ids}
    fraction = len(bad) / total if total else 0.0
    passed = fraction <= settings["max_fraction"]
    return CheckResult(name, passed, bool(settings["gate"]), summary.format(n=len(bad), total=total, fraction=fraction,
                       allowed=settings["max_fraction"]), measured={"flagged": len(bad), "fraction": fraction,
                       **{k: len(v) for k, v in flagged.items()}, **measured}, findings=findings, override=override)


@dataclass
class AudioFormatCheck:
    """Sample rates and channel counts seen; files below 16 kHz are flagged (upsampling cannot
    restore the missing bandwidth). Settings: ``min_samplerate``, ``max_fraction``, ``gate``."""

    name: str = "audio_format"
    defaults: ClassVar[dict[str, Any]] = {"min_samplerate": 16000, "max_fraction": 0.0, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        infos = audio_infos(data, ctx)
        if not infos:
            return CheckResult(self.name, True, bool(s["gate"]), "not applicable: no readable audio")
        rates = Counter(i.samplerate for i in infos.values())
        channels = Counter(i.channels for i in infos.values())
        by_file = {p: i for p, i in infos.items()}
        low = [r.id for r in data.records() if str(r.media) in by_file and by_file[str(r.media)].samplerate < s["min_samplerate"]]
        seen = ", ".join(f"{rate} Hz x{n}" for rate, n in sorted(rates.items()))
        chans = ", ".join(f"{c} ch x{n}" for c, n in sorted(channels.items()))
        summary = (f"sample rates {seen}; channels {chans}; every file is resampled to 16 kHz mono. "
                   "{n} of {total} items below " + f"{s['min_samplerate']} Hz" + " ({fraction:.1%}, allowed {allowed:.1%})")
        return _result(self.name, s, {"low_samplerate": low},
                       {"low_samplerate": f"sample rate below {s['min_samplerate']} Hz (band-limited audio)"},
                       len(data.records()), summary,
                       {"samplerates": {str(k): v for k, v in rates.items()},
                        "channels": {str(k): v for k, v in channels.items()}},
                       f"data.gates.plugins.{self.name}.min_samplerate=<Hz>")


@dataclass
class AudioLevelCheck:
    """Clipping and long leading/trailing silence. Settings: ``max_clipped_fraction`` (share of
    samples at full scale), ``max_edge_silence`` (seconds), ``max_fraction``, ``gate``."""

    name: str = "audio_levels"
    defaults: ClassVar[dict[str, Any]] = {"max_clipped_fraction": 0.001, "max_edge_silence": 1.0,
                                          "max_fraction": 0.05, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        infos = audio_infos(data, ctx)
        flagged: dict[str, list[str]] = {"clipping": [], "edge_silence": []}
        for record in data.records():
            info = infos.get(str(record.media))
            if info is None or record.fields.get("offset") is not None:  # segments: the file's edges are not theirs
                continue
            if info.clipped_fraction > s["max_clipped_fraction"]:
                flagged["clipping"].append(record.id)
            if max(info.lead_silence, info.trail_silence) > s["max_edge_silence"]:
                flagged["edge_silence"].append(record.id)
        explain = {"clipping": f"over {s['max_clipped_fraction']:.2%} of samples at full scale",
                   "edge_silence": f"over {s['max_edge_silence']} s of leading or trailing silence"}
        summary = "{n} of {total} items clip or have long edge silence ({fraction:.1%}, allowed {allowed:.1%})"
        return _result(self.name, s, flagged, explain, len(data.records()), summary, {},
                       f"data.gates.plugins.{self.name}.max_fraction=<fraction>")


@dataclass
class DurationCheck:
    """Duration outliers against the median, too-short items, and items longer than the model's
    window without segments (they would be cut). Settings: ``min_seconds``, ``max_ratio``,
    ``max_fraction``, ``gate``."""

    name: str = "durations"
    defaults: ClassVar[dict[str, Any]] = {"min_seconds": 0.2, "max_ratio": 5.0, "max_fraction": 0.0, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        window = float(data.extras.get(WINDOW_KEY, DEFAULT_WINDOW))
        infos = audio_infos(data, ctx)
        lengths = {r.id: d for r in data.records() if (d := duration_of(r, infos)) is not None}
        if not lengths:
            return CheckResult(self.name, True, bool(s["gate"]), "not applicable: no readable audio")
        median = statistics.median(lengths.values())
        flagged: dict[str, list[str]] = {"too_short": [], "outlier": [], "over_window": [], "long_cue": []}
        segments = {r.id for r in data.records() if r.fields.get("offset") is not None}
        for rid, d in lengths.items():
            if d > window:
                flagged["long_cue" if rid in segments else "over_window"].append(rid)
            elif d < s["min_seconds"]:
                flagged["too_short"].append(rid)
            elif max(d / median, median / max(d, 1e-6)) > s["max_ratio"]:
                flagged["outlier"].append(rid)
        explain = {"too_short": f"shorter than {s['min_seconds']} s",
                   "outlier": f"over {s['max_ratio']}x away from the median {median:.2f} s",
                   "over_window": f"longer than the model's {window:g} s window and not segmented (would be cut; "
                                  "give offset/duration segments or an SRT/VTT transcript)",
                   "long_cue": f"a segment longer than the model's {window:g} s window: one subtitle cue (or "
                               "offset/duration segment) this long would be cut; split it into shorter cues"}
        summary = ("{n} of {total} items are duration outliers or exceed the window ({fraction:.1%}, allowed "
                   "{allowed:.1%}); " + f"median {median:.2f} s, window {window:g} s")
        return _result(self.name, s, flagged, explain, len(lengths), summary,
                       {"median_seconds": median, "window_seconds": window, "total_hours": sum(lengths.values()) / 3600},
                       f"data.gates.plugins.{self.name}.max_fraction=<fraction>")


@dataclass
class TranscriptCheck:
    """Empty transcripts, speaking rates (characters per second) far from the corpus median, and
    transcripts Whisper's tokenizer does not give back unchanged. Settings: ``max_rate_ratio``,
    ``max_fraction``, ``gate``."""

    name: str = "transcripts"
    defaults: ClassVar[dict[str, Any]] = {"max_rate_ratio": 2.5, "max_fraction": 0.02, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        from plugins.speech.tokens import tokenizer_for

        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        infos = audio_infos(data, ctx)
        labeled = [r for r in data.records() if r.label is not None]
        tok = tokenizer_for(None)
        flagged: dict[str, list[str]] = {"empty": [], "rate_outlier": [], "no_round_trip": []}
        rates: dict[str, float] = {}
        for record in labeled:
            text = str(record.label).strip()
            if not text:
                flagged["empty"].append(record.id)
                continue
            if tok.decode(tok.encode(" " + text)).strip() != text:
                flagged["no_round_trip"].append(record.id)
            d = duration_of(record, infos)
            if d:
                rates[record.id] = len(text.replace(" ", "")) / d
        median = statistics.median(rates.values()) if rates else 0.0
        for rid, rate in rates.items():
            if median and max(rate / median, median / max(rate, 1e-6)) > s["max_rate_ratio"]:
                flagged["rate_outlier"].append(rid)
        explain = {"empty": "empty transcript",
                   "rate_outlier": f"characters per second over {s['max_rate_ratio']}x away from the median "
                                   f"{median:.1f} (transcript of another file, or cut audio?)",
                   "no_round_trip": "the tokenizer does not give the transcript back unchanged (unusual characters)"}
        summary = ("{n} of {total} transcripts are empty, off-rate or not tokenizable ({fraction:.1%}, allowed "
                   "{allowed:.1%}); " + f"median {median:.1f} characters/s")
        return _result(self.name, s, flagged, explain, len(labeled), summary, {"median_chars_per_second": median},
                       f"data.gates.plugins.{self.name}.max_fraction=<fraction>")


@dataclass
class LanguageCheck:
    """Language-tag coverage per split: the share of records with a ``language`` field, the
    languages of each split, evaluation languages never seen in training, and codes Whisper has
    no token for. Settings: ``min_tagged_fraction``, ``gate``."""

    name: str = "language_tags"
    defaults: ClassVar[dict[str, Any]] = {"min_tagged_fraction": 0.0, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        from plugins.speech.tokens import language_code

        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        per_split: dict[str, dict[str, int]] = {}
        tagged: dict[str, float] = {}
        unknown: list[str] = []
        for split, records in data.splits.items():
            langs = Counter(str(r.fields["language"]) for r in records if r.fields.get("language"))
            per_split[split] = dict(langs)
            tagged[split] = sum(langs.values()) / len(records) if records else 1.0
            for r in records:
                code = r.fields.get("language")
                if code:
                    try:
                        language_code(str(code))
                    except ValueError:
                        unknown.append(r.id)
        train_langs = set(per_split.get("train", {}))
        unseen = {split: sorted(set(langs) - train_langs) for split, langs in per_split.items() if split != "train"}
        findings = [Finding("unseen_language", (split,), f"{split} has languages absent from train: {', '.join(v)}")
                    for split, v in unseen.items() if v]
        if unknown:
            findings.append(Finding("unknown_language", tuple(sorted(unknown)),
                                    f"{len(unknown)} item(s) with a language Whisper has no token for"))
        low = {k: v for k, v in tagged.items() if v < s["min_tagged_fraction"]}
        passed = not unknown and not low and not any(unseen.values())
        table = "; ".join(f"{split}: " + ", ".join(f"{k} {v}" for k, v in sorted(langs.items())) +
                          f" ({tagged[split]:.0%} tagged)" for split, langs in per_split.items())
        return CheckResult(self.name, passed, bool(s["gate"]), f"languages per split: {table}",
                           measured={"languages": per_split, "tagged_fraction": tagged}, findings=findings,
                           override=f"data.gates.plugins.{self.name}.gate=false keeps this a warning")


def quality_checks() -> list[Any]:
    """The speech plugin's checks, in report order."""
    return [AudioFormatCheck(), AudioLevelCheck(), DurationCheck(), TranscriptCheck(), LanguageCheck()]
