"""Decoder sequences: the prompt with each utterance's language token, and the transcript.

A training sequence is ``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|> text
<|endoftext|>`` (with ``timestamps`` on: ``<|0.00|> text <|T|>`` in place of ``<|notimestamps|>``,
``T`` the utterance's duration). The decoder reads it shifted right (teacher forcing); the loss is
taken on the transcript and the end token only, never on the prompt it was given.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE, Tokenizer, get_tokenizer

IGNORE = -100  # label of positions outside the loss (prompt and padding)
TIME_PRECISION = 0.02  # seconds per timestamp token


@lru_cache(maxsize=None)
def vocab_languages(n_vocab: int) -> int:
    """Languages a multilingual Whisper vocabulary of ``n_vocab`` tokens holds tokens for."""
    return n_vocab - 51765 - int(n_vocab >= 51865)


def tokenizer_for(language: str | None, num_languages: int = 99) -> Tokenizer:
    """Whisper's multilingual tokenizer for ``language`` (a code such as ``hi``); offline."""
    return get_tokenizer(multilingual=True, num_languages=num_languages, language=language, task="transcribe")


def language_code(value: str) -> str:
    """``hi`` for ``hi``, ``Hindi`` or ``hindi``.

    Raises:
        ValueError: for a language Whisper has no token for, listing the valid codes.
    """
    code = str(value).strip().lower()
    code = TO_LANGUAGE_CODE.get(code, code)
    if code not in LANGUAGES:
        raise ValueError(f"language {value!r} has no Whisper token; use one of the codes {', '.join(sorted(LANGUAGES))} "
                         "or a language name Whisper knows (e.g. hindi)")
    return code


def prompt(language: str, timestamps: bool = False, num_languages: int = 99) -> list[int]:
    """The decoder prompt of an utterance whose primary language is ``language``."""
    tok = tokenizer_for(language_code(language), num_languages)
    return list(tok.sot_sequence if timestamps else tok.sot_sequence_including_notimestamps)


def encode(text: str, language: str, *, duration: float | None = None, timestamps: bool = False,
           num_languages: int = 99) -> tuple[list[int], int]:
    """``(sequence, prompt length)`` of one utterance (see the module docstring)."""
    tok = tokenizer_for(language_code(language), num_languages)
    head = prompt(language, timestamps, num_languages)
    body = tok.encode(" " + text.strip()) if text.strip() else []
    if timestamps:
        end = round((duration or 0.0) / TIME_PRECISION)
        body = [tok.timestamp_begin] + body + [tok.timestamp_begin + min(end, 1500)]
    return head + body + [tok.eot], len(head)


def collate_tokens(sequences: list[list[int]], prompt_lengths: list[int], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing pairs: ``(inputs (B, L), labels (B, L))``, right-padded.

    ``inputs[b, t]`` is token ``t`` of sequence ``b`` and ``labels[b, t]`` token ``t + 1``; labels of
    prompt positions and of padding are :data:`IGNORE`.
    """
    length = max(len(s) for s in sequences) - 1
    inputs = torch.full((len(sequences), length), pad, dtype=torch.long)
    labels = torch.full((len(sequences), length), IGNORE, dtype=torch.long)
    for b, (seq, head) in enumerate(zip(sequences, prompt_lengths)):
        n = len(seq) - 1
        inputs[b, :n] = torch.tensor(seq[:-1])
        labels[b, :n] = torch.tensor(seq[1:])
        labels[b, : head - 1] = IGNORE  # the prompt's own tokens are given, not predicted
    return inputs, labels
