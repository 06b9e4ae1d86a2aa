"""Synthesise the bundled code-switched Hindi-English speech corpus with espeak-ng.

The speech plugin's default config trains on this corpus, so a fresh machine with no network can
run ``python -m framework +modality=speech`` end to end. Nothing is downloaded: every utterance is
spoken by espeak-ng (``apt-get install espeak-ng``) from sentences this script composes.

What it writes (deterministic for a seed)::

    examples/data/speech_hien/
      audio/<split>/<id>.ogg     mono Ogg Vorbis at 22.05 kHz (espeak-ng's native rate), so every
                                 run exercises the plugin's resampling to 16 kHz
      train.jsonl val.jsonl test.jsonl   NeMo manifests: audio_filepath, duration, text, language,
                                 plus speaker, kind (hi | en | mixed) and switches (script changes)
      README.md                  the dataset card

Sentences come from small templates with slots, in three kinds:

* ``hi``: Hindi only, in Devanagari (language ``hi``);
* ``en``: English only (language ``en``);
* ``mixed``: Hindi sentences with English words or phrases inside them (intra-sentential code
  switching, as in everyday Hinglish), primary language ``hi``. Each script run is spoken by the
  voice of its language (espeak-ng's Hindi voice for Devanagari, an English voice for Latin) and
  the runs are joined with a short pause, so the switch is audible as it would be in real speech.

Distinct sentences are split into train/val/test *before* synthesis, so no val or test sentence
is ever heard in training (the words are shared; the combinations are new). Utterances whose
spectral fingerprint is within the audit's near-duplicate radius of one already kept are skipped
(spare sentences take their place), so the bundled data passes the default cleanliness gate. Speakers are
espeak-ng voice variants at different speeds and pitches; every speaker appears in every split.

Usage::

    python examples/make_speech.py [--out examples/data/speech_hien] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from framework.data.config import GATE_DEFAULTS
from framework.data.fingerprints import audio_signature

RATE = 22050  # espeak-ng's output rate; written as is
DEVANAGARI = re.compile(r"[\u0900-\u097F]")

# Slot fillers. Hindi in Devanagari, English in lower case (the transcripts' convention).
HI_PEOPLE = ["राम", "सीता", "मोहन", "गीता", "रवि", "आशा"]
HI_PLACES = ["दिल्ली", "मुंबई", "घर", "बाज़ार", "स्कूल", "गाँव"]
HI_TIMES = ["आज", "कल", "अभी", "सुबह", "शाम को", "रात को"]
HI_VERBS = ["जाना है", "आना है", "रुकना है", "पढ़ना है", "खाना है", "सोना है"]
HI_THINGS = ["किताब", "पानी", "चाय", "खाना", "पैसे", "कपड़े"]
EN_THINGS = ["report", "laptop", "ticket", "phone", "email", "file"]
EN_PLACES = ["office", "meeting", "station", "airport", "hotel", "class"]
EN_ADJ = ["late", "ready", "busy", "free", "closed", "open"]
EN_PEOPLE = ["manager", "doctor", "driver", "teacher", "team", "client"]
EN_TIMES = ["today", "tomorrow", "tonight", "now", "later", "soon"]

TEMPLATES: dict[str, list[str]] = {
    "hi": [
        "{hp} को {ht} {hpl} {hv}",
        "मुझे {ht} {hth} चाहिए",
        "{hp} {hpl} में है",
        "{ht} {hpl} में बहुत भीड़ है",
        "क्या तुम {ht} {hpl} आओगे",
    ],
    "en": [
        "the {ep} is {ea} {et}",
        "please send the {eth} {et}",
        "my {eth} is in the {epl}",
        "the {epl} is {ea} {et}",
        "call the {ep} {et}",
    ],
    "mixed": [
        "{ht} मेरी {epl} है",
        "{hp} का {eth} {hpl} में है",
        "मुझे {eth} {et} चाहिए",
        "{ep} {ht} {ea} है",
        "{hp} को {eth} send करो",
        "{epl} में {hth} नहीं है",
        "please {hp} को {ht} बुलाओ",
    ],
}
SLOTS = {
    "hp": HI_PEOPLE, "hpl": HI_PLACES, "ht": HI_TIMES, "hv": HI_VERBS, "hth": HI_THINGS,
    "eth": EN_THINGS, "epl": EN_PLACES, "ea": EN_ADJ, "ep": EN_PEOPLE, "et": EN_TIMES,
}


@dataclass(frozen=True)
class Speaker:
    """An espeak-ng voice pair (one per language), a variant, a speed and a pitch."""

    name: str
    en_voice: str
    variant: str
    speed: int
    pitch: int


SPEAKERS = [
    Speaker("spk_a", "en-us", "m1", 150, 45),
    Speaker("spk_b", "en-gb", "f2", 165, 60),
    Speaker("spk_c", "en-gb-x-rp", "m3", 140, 35),
    Speaker("spk_d", "en-us", "f4", 175, 70),
    Speaker("spk_e", "en-029", "m2", 160, 50),
    Speaker("spk_f", "en-gb-scotland", "f1", 145, 55),
]
COUNTS = {"train": 300, "val": 36, "test": 36}  # utterances per split
KIND_SHARE = {"hi": 0.3, "en": 0.3, "mixed": 0.4}
SPARE = 1.5  # candidate sentences per utterance kept


def fill(template: str, rng: random.Random) -> str:
    """A template with every ``{slot}`` replaced by a random filler."""
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)


def script_runs(sentence: str) -> list[tuple[str, str]]:
    """``[(language, words), ...]``: consecutive words of one script grouped (``hi`` or ``en``)."""
    runs: list[tuple[str, list[str]]] = []
    for word in sentence.split():
        lang = "hi" if DEVANAGARI.search(word) else "en"
        if runs and runs[-1][0] == lang:
            runs[-1][1].append(word)
        else:
            runs.append((lang, [word]))
    return [(lang, " ".join(words)) for lang, words in runs]


def sentences(seed: int) -> dict[str, list[tuple[str, str]]]:
    """Distinct ``(kind, sentence)`` pairs per split; no sentence is in two splits."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str]]] = {split: [] for split in COUNTS}
    for kind, share in KIND_SHARE.items():
        pool: set[str] = set()
        # Spare sentences: candidates that sound like an already kept utterance are skipped.
        need = {split: round(n * share * SPARE) for split, n in COUNTS.items()}
        total = sum(need.values())
        for _ in itertools.count():
            if len(pool) >= total:
                break
            pool.add(fill(rng.choice(TEMPLATES[kind]), rng))
        ordered = sorted(pool)
        rng.shuffle(ordered)
        start = 0
        for split, n in need.items():
            out[split] += [(kind, s) for s in ordered[start : start + n]]
            start += n
    for split in out:
        rng.shuffle(out[split])
    return out


def speak(text: str, voice: str, speaker: Speaker, workdir: Path) -> np.ndarray:
    """espeak-ng's float32 mono samples at :data:`RATE` for ``text`` in ``voice``."""
    wav = workdir / "run.wav"
    subprocess.run(["espeak-ng", "-v", f"{voice}+{speaker.variant}", "-s", str(speaker.speed), "-p",
                    str(speaker.pitch), "-w", str(wav), text], check=True, capture_output=True)
    samples, rate = sf.read(str(wav), dtype="float32")
    assert rate == RATE, f"espeak-ng wrote {rate} Hz, expected {RATE}"
    return trim(samples)


def trim(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """``samples`` without leading/trailing near-silence."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples


def utterance(sentence: str, speaker: Speaker, workdir: Path) -> tuple[np.ndarray, int]:
    """The spoken sentence (each script run in its language's voice) and its number of switches."""
    runs = script_runs(sentence)
    pause = np.zeros(int(0.08 * RATE), dtype=np.float32)
    edge = np.zeros(int(0.15 * RATE), dtype=np.float32)
    parts = [edge]
    for i, (lang, text) in enumerate(runs):
        if i:
            parts.append(pause)
        parts.append(speak(text, "hi" if lang == "hi" else speaker.en_voice, speaker, workdir))
    parts.append(edge)
    audio = np.concatenate(parts)
    return 0.8 * audio / max(float(np.abs(audio).max()), 1e-6), len(runs) - 1


def write_card(out: Path, counts: dict[str, dict[str, int]], seconds: dict[str, float], seed: int) -> None:
    rows = "\n".join(f"| {split} | {sum(c.values())} | {c.get('hi', 0)} | {c.get('en', 0)} | {c.get('mixed', 0)} "
                     f"| {seconds[split] / 60:.1f} |" for split, c in counts.items())
    speakers = "\n".join(f"| {s.name} | `hi+{s.variant}` / `{s.en_voice}+{s.variant}` | {s.speed} | {s.pitch} |"
                         for s in SPEAKERS)
    text = f"""# Dataset card: speech_hien (synthetic code-switched Hindi-English speech)

Written by `examples/make_speech.py --seed {seed}` with espeak-ng; regenerate it with that command.
It exists so that `python -m framework +modality=speech` runs offline on any machine. It is
synthetic, robotic speech with a small vocabulary: good for checking that a pipeline learns, not
for judging an ASR model on real speech.

## Contents

| split | utterances | Hindi only | English only | code-switched | minutes |
|---|---|---|---|---|---|
{rows}

* Audio: mono Ogg Vorbis at 22.05 kHz (espeak-ng's native rate; the plugin resamples to 16 kHz),
  peak-normalised to 0.8, 150 ms of silence at each end.
* Manifests: NeMo JSONL, one utterance per line: `audio_filepath` (relative to this folder),
  `duration` (seconds), `text`, `language` (`hi` or `en`: the primary language), `speaker`,
  `kind` (`hi`, `en`, `mixed`) and `switches` (number of script changes in the transcript).
* Transcripts: Hindi in Devanagari, English in lower-case Latin, no punctuation. Code-switched
  sentences keep each word in its own script (`कल मेरी meeting है`), as code-switched text is
  usually written.

## How it was made

Sentences are filled from templates with slots (people, places, times, things) in three kinds:
Hindi only, English only, and Hindi with English words inside (primary language `hi`). Distinct
sentences were split into train/val/test before synthesis: **no val or test sentence occurs in
train**; the vocabulary is shared. Candidates whose 64-bit spectral fingerprint lies within the
audit's near-duplicate radius of an utterance already kept were skipped. In a code-switched sentence each run of one script is spoken by
that language's voice, joined by an 80 ms pause.

Speakers (espeak-ng voice variants; every speaker appears in every split):

| speaker | voices (hi / en) | speed (wpm) | pitch |
|---|---|---|---|
{speakers}

## Known limits

* espeak-ng's Hindi voice is formant synthesis, far from natural speech; one Hindi voice with
  variants stands for several speakers.
* The vocabulary is about 90 words, so WER on held-out sentences measures generalisation to new
  combinations of known words, not to new words.
* Licence: the sentences are the project's own; the audio is espeak-ng output (GPL-3 program; its
  output is not covered by the program's licence).
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "speech_hien")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng")
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(args.seed)
    counts: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = {}
    radius = GATE_DEFAULTS["cleanliness"]["audio_hamming"]
    kept_signatures: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for split, items in sentences(args.seed).items():
            (out / "audio" / split).mkdir(parents=True)
            lines, counts[split], seconds[split] = [], {}, 0.0
            want = {kind: round(COUNTS[split] * share) for kind, share in KIND_SHARE.items()}
            for kind, sentence in items:
                if counts[split].get(kind, 0) >= want[kind]:
                    continue
                i = len(lines)
                speaker = SPEAKERS[i % len(SPEAKERS)] if split != "train" else rng.choice(SPEAKERS)
                audio, switches = utterance(sentence, speaker, Path(tmp))
                rel = f"audio/{split}/{split}_{i:04d}.ogg"
                sf.write(str(out / rel), audio, RATE, format="OGG", subtype="VORBIS", compression_level=1.0)
                # The audit's cleanliness gate hashes audio into 64 coarse spectral bits; short
                # synthetic sentences of one template can collide. Keep only utterances no kept one
                # is near (within the gate's radius), so the bundled data passes the default gate.
                signature, _ = audio_signature(out / rel)
                if any(bin(signature ^ other).count("1") <= radius for other in kept_signatures):
                    (out / rel).unlink()
                    continue
                kept_signatures.append(signature)
                duration = round(len(audio) / RATE, 3)
                lines.append({"audio_filepath": rel, "duration": duration, "text": sentence,
                              "language": "en" if kind == "en" else "hi", "speaker": speaker.name,
                              "kind": kind, "switches": switches})
                counts[split][kind] = counts[split].get(kind, 0) + 1
                seconds[split] += duration
            short = {k: want[k] - counts[split].get(k, 0) for k in want if counts[split].get(k, 0) < want[k]}
            if short:
                raise SystemExit(f"{split}: not enough distinct-sounding candidates for {short}; raise SPARE")
            with (out / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
            print(f"{split}: {len(lines)} utterances, {seconds[split] / 60:.1f} min")
    write_card(out, counts, seconds, args.seed)


if __name__ == "__main__":
    main()
