"""Transcript text: scoring normalisation and the script (hence language) of each word.

Code-switched Hindi-English is written with each word in its own script (``कल मेरी meeting है``),
so the script of a word tells its language. Scoring normalisation is configurable and never
removes or transliterates a script: it only folds case, unifies Unicode forms, drops punctuation
and collapses spaces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Unicode blocks of the scripts the plugin tells apart; anything else is "other".
SCRIPT_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "devanagari": ((0x0900, 0x097F), (0xA8E0, 0xA8FF)),
    "latin": ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F)),
}
# The language a script stands for in per-language scoring (modality.script_languages overrides).
DEFAULT_SCRIPT_LANGUAGES = {"devanagari": "hi", "latin": "en"}

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TextNormalizer:
    """How references and hypotheses are normalised before WER/CER.

    Attributes:
        lowercase: Fold case (only affects cased scripts such as Latin).
        unicode_form: ``NFC``/``NFKC``/``NFD``/``NFKD`` (``""`` keeps the text as is). NFC keeps
            Devanagari conjuncts and nuktas comparable however they were typed.
        remove_punctuation: Drop Unicode punctuation (``P*`` categories), including the danda
            ``।``; letters, combining marks (matras, virama) and digits of every script stay.
        numbers: Write numbers one way (:func:`normalize_numbers`); off by default.
    """

    lowercase: bool = True
    unicode_form: str = "NFC"
    remove_punctuation: bool = True
    numbers: bool = False

    def __call__(self, text: str) -> str:
        if self.unicode_form:
            text = unicodedata.normalize(self.unicode_form, text)
        if self.lowercase:
            text = text.lower()
        if self.remove_punctuation:
            text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
        if self.numbers:
            text = normalize_numbers(text)
        return _SPACE.sub(" ", text).strip()


def normalize_numbers(text: str) -> str:
    """Numbers written one way: decimal digits of any script (``२५``) as ASCII digits, and spelled-out
    English numbers as digits by whisper's ``EnglishNumberNormalizer`` (``twenty five`` -> ``25``,
    ``two point five`` -> ``2.5``); words that are not numbers, in any script, stay as they are."""
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    return _english_numbers()(text)


_NUMBER_NORMALIZER = None


def _english_numbers():  # type: ignore[no-untyped-def]
    global _NUMBER_NORMALIZER
    if _NUMBER_NORMALIZER is None:
        from whisper.normalizers.english import EnglishNumberNormalizer

        _NUMBER_NORMALIZER = EnglishNumberNormalizer()
    return _NUMBER_NORMALIZER


def char_script(ch: str) -> str | None:
    """The script of one character (``devanagari``, ``latin``), or ``None`` for others."""
    code = ord(ch)
    for script, ranges in SCRIPT_RANGES.items():
        if any(lo <= code <= hi for lo, hi in ranges):
            return script
    return None


def word_script(word: str) -> str:
    """The script most of ``word``'s letters belong to; ``other`` when none is known."""
    counts: dict[str, int] = {}
    for ch in word:
        script = char_script(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else "other"


def word_languages(words: list[str], script_languages: dict[str, str] | None = None) -> list[str]:
    """The language of each word, from its script; words of unknown script get ``other``."""
    table = script_languages or DEFAULT_SCRIPT_LANGUAGES
    return [table.get(word_script(w), "other") for w in words]


def switch_positions(languages: list[str]) -> list[int]:
    """Indices ``i`` where word ``i`` starts a new language (``languages[i] != languages[i-1]``),
    ignoring words of unknown language."""
    out, last = [], None
    for i, lang in enumerate(languages):
        if lang == "other":
            continue
        if last is not None and lang != last:
            out.append(i)
        last = lang
    return out


def is_code_switched(text: str, script_languages: dict[str, str] | None = None) -> bool:
    """True when the words of ``text`` are in more than one known language."""
    return bool(switch_positions(word_languages(text.split(), script_languages)))
