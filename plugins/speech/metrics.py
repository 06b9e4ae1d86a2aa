"""Speech recognition metrics with jiwer: WER/CER overall, per language, on code-switched
utterances and at switch points.

All figures are corpus-level (errors summed over utterances, divided by reference words summed),
as jiwer computes them for lists, never means of per-utterance rates.

* **Per-language WER** splits each reference and hypothesis into the words of one language (by
  script, :mod:`plugins.speech.text`), keeps their order, and scores the two sub-sequences: the
  Hindi WER of ``कल मेरी meeting है`` -> ``कल मेरा meeting है`` is 1 error / 3 Hindi words.
* **Code-switched WER** is the WER of the utterances whose reference mixes languages.
* **Switch-point error rate**: the reference words on either side of each change of language
  (``मेरी`` and ``meeting``, ``meeting`` and ``है`` above) that the alignment does not match
  exactly, over all such words. Models often fail right where the language changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import jiwer

from plugins.speech.text import TextNormalizer, switch_positions, word_languages


@dataclass
class Counts:
    """Edit counts of a set of utterances; ``rate`` is (S + D + I) / N."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    words: int = 0

    def add(self, other: "Counts") -> None:
        self.substitutions += other.substitutions
        self.deletions += other.deletions
        self.insertions += other.insertions
        self.words += other.words

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Error rate; ``nan`` with no reference words (and no insertions)."""
        if self.words == 0:
            return float("nan") if self.errors == 0 else float("inf")
        return self.errors / self.words


def _output(reference: list[str], hypothesis: list[str]) -> jiwer.WordOutput | None:
    if not reference:
        return None
    return jiwer.process_words(" ".join(reference), " ".join(hypothesis) if hypothesis else "")


def word_counts(reference: list[str], hypothesis: list[str]) -> Counts:
    """Edit counts of one utterance (an empty reference makes every hypothesis word an insertion)."""
    out = _output(reference, hypothesis)
    if out is None:
        return Counts(insertions=len(hypothesis))
    return Counts(out.substitutions, out.deletions, out.insertions, len(reference))


def switch_point_errors(reference: list[str], hypothesis: list[str], languages: list[str]) -> tuple[int, int]:
    """``(wrong, total)`` reference words next to a change of language (see module docstring)."""
    points: set[int] = set()
    for i in switch_positions(languages):
        prev = max(j for j in range(i) if languages[j] != "other")
        points.update((prev, i))
    if not points:
        return 0, 0
    out = _output(reference, hypothesis)
    matched: set[int] = set()
    if out is not None:
        for chunk in out.alignments[0]:
            if chunk.type == "equal":
                matched.update(range(chunk.ref_start_idx, chunk.ref_end_idx))
    return len(points - matched), len(points)


@dataclass
class AsrScores:
    """Every figure of :func:`score`; ``metrics()`` flattens them for an ``EvalReport``."""

    overall: Counts = field(default_factory=Counts)
    per_language: dict[str, Counts] = field(default_factory=dict)
    code_switched: Counts = field(default_factory=Counts)
    switch_wrong: int = 0
    switch_total: int = 0
    cer: float = float("nan")
    utterances: int = 0
    code_switched_utterances: int = 0

    def metrics(self) -> dict[str, float]:
        out = {"wer": self.overall.rate, "cer": self.cer, "count": float(self.utterances),
               "code_switched_count": float(self.code_switched_utterances)}
        for lang, counts in sorted(self.per_language.items()):
            out[f"wer_{lang}"] = counts.rate
        if self.code_switched_utterances:
            out["wer_code_switched"] = self.code_switched.rate
        if self.switch_total:
            out["switch_point_error_rate"] = self.switch_wrong / self.switch_total
        return out


def score(
    references: Sequence[str],
    hypotheses: Sequence[str],
    normalizer: TextNormalizer | None = None,
    script_languages: Mapping[str, str] | None = None,
) -> AsrScores:
    """WER, CER, per-language WER, code-switched WER and switch-point errors of aligned lists."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    norm = normalizer or TextNormalizer()
    table = dict(script_languages) if script_languages else None
    scores = AsrScores(utterances=len(references))
    ref_chars, hyp_chars = [], []
    for ref_text, hyp_text in zip(references, hypotheses):
        ref, hyp = norm(ref_text).split(), norm(hyp_text).split()
        counts = word_counts(ref, hyp)
        scores.overall.add(counts)
        ref_langs, hyp_langs = word_languages(ref, table), word_languages(hyp, table)
        for lang in sorted(set(ref_langs) | set(hyp_langs)):
            sub_ref = [w for w, lg in zip(ref, ref_langs) if lg == lang]
            sub_hyp = [w for w, lg in zip(hyp, hyp_langs) if lg == lang]
            scores.per_language.setdefault(lang, Counts()).add(word_counts(sub_ref, sub_hyp))
        if switch_positions(ref_langs):
            scores.code_switched_utterances += 1
            scores.code_switched.add(counts)
            wrong, total = switch_point_errors(ref, hyp, ref_langs)
            scores.switch_wrong += wrong
            scores.switch_total += total
        if ref:
            ref_chars.append(" ".join(ref))
            hyp_chars.append(" ".join(hyp))
    if ref_chars:
        scores.cer = float(jiwer.cer(ref_chars, hyp_chars))
    # A language seen only in hypotheses (e.g. "other") has no reference words: not a WER.
    scores.per_language = {k: v for k, v in scores.per_language.items() if v.words}
    return scores


def per_slice(
    references: Sequence[str],
    hypotheses: Sequence[str],
    slices: Sequence[Mapping[str, str]],
    normalizer: TextNormalizer | None = None,
) -> dict[str, dict[str, float]]:
    """``field=value`` -> ``{"wer", "count"}`` for every slice value present."""
    groups: dict[str, list[int]] = {}
    for i, values in enumerate(slices):
        for key, value in values.items():
            groups.setdefault(f"{key}={value}", []).append(i)
    out = {}
    for name, idx in sorted(groups.items()):
        s = score([references[i] for i in idx], [hypotheses[i] for i in idx], normalizer)
        out[name] = {"wer": s.overall.rate, "count": float(len(idx))}
    return out
