"""Transcribing utterances with whisper's own decoder, each with its language token.

Utterances are grouped by primary language so every decoder prompt is
``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>`` for that utterance's language;
decoding is greedy (``beam_size`` 0/1) or beam search, through ``whisper.decoding.decode``.

What released Whisper needs on top (``modality.fallback``, :class:`~plugins.speech.config.FallbackConfig`), as
whisper's own ``transcribe`` does it:

* **Temperature fallback**: an utterance whose transcript is too repetitive (gzip compression
  ratio of its text above ``compression_ratio_threshold``, 2.4) or too unlikely (mean token
  log-probability below ``logprob_threshold``, -1) is decoded again at the next temperature
  (0.0, 0.2, ..., 1.0; sampling with ``best_of`` candidates), unless the model thinks it is
  silence (no-speech probability above ``no_speech_threshold`` with a low log-probability). Where
  every temperature fails, whisper keeps the last attempt; here the attempt with the best mean
  log-probability among those that are not repetitive is kept (else the greedy one), so a weak
  model is not scored on its most random sample. Sampling is seeded: reruns give the same text.
* **Repetition cut**: a run of more than ``max_repeats`` consecutive copies of the same token
  n-gram (a decoding loop, ``बाहागगगगग…``) is cut to one copy.
* **Special tokens never reach a transcript**: only text tokens (ids below ``<|endoftext|>``) are
  decoded; whisper's ``Tokenizer.decode`` keeps language and task tokens (``Jaiya<|hi|> Commission.``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from whisper.decoding import DecodingOptions, DecodingResult, decode
from whisper.model import Whisper
from whisper.tokenizer import Tokenizer
from whisper.utils import compression_ratio

from plugins.speech.config import FallbackConfig
from plugins.speech.dataset import pad_or_trim
from plugins.speech.features import LogMel
from plugins.speech.model import num_languages, window_samples
from plugins.speech.tokens import language_code, tokenizer_for


NO_FALLBACK = FallbackConfig(temperatures=[0.0], max_repeats=0)


def transcript_text(tokens: Sequence[int], tokenizer: Tokenizer) -> str:
    """The text of decoded ``tokens``: special tokens (language, task, timestamps, end) dropped."""
    return tokenizer.decode([int(t) for t in tokens if int(t) < tokenizer.eot]).strip()


def cut_repetition(tokens: Sequence[int], max_repeats: int, max_ngram: int = 16) -> list[int]:
    """``tokens`` with the first run of more than ``max_repeats`` consecutive copies of one n-gram
    (n up to ``max_ngram``) cut to a single copy, and everything after it dropped (a decoding loop
    runs to the token limit, so nothing after its start is speech)."""
    tokens = list(tokens)
    if max_repeats <= 0:
        return tokens
    for start in range(len(tokens)):
        for n in range(1, max_ngram + 1):
            gram = tokens[start:start + n]
            if len(gram) < n:
                break
            copies = 1
            while tokens[start + copies * n:start + (copies + 1) * n] == gram:
                copies += 1
            if copies > max_repeats:
                return tokens[:start + n]
    return tokens


def needs_fallback(result: DecodingResult, text: str, fallback: FallbackConfig) -> bool:
    """Whisper's rule: too repetitive or too unlikely, and not silence."""
    bad = False
    if fallback.compression_ratio_threshold is not None and text and \
            compression_ratio(text) > fallback.compression_ratio_threshold:
        bad = True
    low = fallback.logprob_threshold is not None and result.avg_logprob < fallback.logprob_threshold
    if low:
        bad = True
    if fallback.no_speech_threshold is not None and low and result.no_speech_prob > fallback.no_speech_threshold:
        bad = False
    return bad


def decoding_options(language: str, beam_size: int = 0, sample_len: int | None = None,
                     temperature: float = 0.0, best_of: int | None = None) -> DecodingOptions:
    """Whisper's options for one language: greedy for ``beam_size <= 1`` (beam search at
    temperature 0 only, sampling ``best_of`` candidates above it), no timestamps, fp32."""
    sampling = temperature > 0
    return DecodingOptions(task="transcribe", language=language_code(language), without_timestamps=True,
                           beam_size=beam_size if beam_size > 1 and not sampling else None, fp16=False,
                           sample_len=sample_len, temperature=temperature,
                           best_of=best_of if sampling and best_of and best_of > 1 else None)


@torch.inference_mode()
def transcribe(
    model: Whisper,
    audio: Sequence[np.ndarray],
    languages: Sequence[str],
    *,
    beam_size: int = 0,
    batch_size: int = 32,
    sample_len: int | None = None,
    fallback: FallbackConfig = NO_FALLBACK,
) -> list[str]:
    """The transcript of each 16 kHz utterance, in input order.

    Args:
        model: A plain Whisper model (``task.whisper()`` merges LoRA adapters); it is put in eval mode.
        audio: 16 kHz mono utterances; each is padded or cut to the model's window.
        languages: Each utterance's primary language (a code or a name).
        beam_size: 0 or 1 decodes greedily; more runs beam search with that many beams.
        batch_size: Utterances per decoder batch (greedy; beam search decodes one at a time).
        sample_len: Most tokens to generate; ``None`` is half the text context (whisper's default).
        fallback: Temperature fallback and repetition cut (off unless given).
    """
    if len(audio) != len(languages):
        raise ValueError(f"{len(audio)} utterances but {len(languages)} languages")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    features = LogMel(model.dims.n_mels).to(device)
    window = window_samples(model.dims)
    out: list[str] = [""] * len(audio)
    groups: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        groups.setdefault(language_code(lang), []).append(i)
    tok = tokenizer_for(None, num_languages(model.dims))
    try:
        for lang, idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                batch = torch.from_numpy(np.stack([pad_or_trim(audio[i], window) for i in chunk])).to(device)
                texts = _decode_with_fallback(model, features(batch), lang, beam_size, sample_len, fallback, tok)
                for i, text in zip(chunk, texts):
                    out[i] = text
    finally:
        model.train(was_training)
    return out


def _decode(model: Whisper, mel: torch.Tensor, options: DecodingOptions) -> list[DecodingResult]:
    if options.beam_size is None and options.best_of is None:
        return decode(model, mel, options)
    # openai-whisper's beam search (and best-of sampling) repeats the tokens but not the audio
    # features by the beam count, so batches of more than one utterance fail in cross-attention
    # (openai/whisper PR #2197, #2389, unmerged); one utterance at a time broadcasts correctly.
    return [decode(model, mel[i : i + 1], options)[0] for i in range(mel.shape[0])]


def _decode_with_fallback(model: Whisper, mel: torch.Tensor, lang: str, beam_size: int, sample_len: int | None,
                          fallback: FallbackConfig, tok: Tokenizer) -> list[str]:
    """Transcripts of one batch of one language, each utterance retried at higher temperatures
    while :func:`needs_fallback` says so (see the module docstring)."""
    texts = [""] * mel.shape[0]
    best: dict[int, tuple[float, str]] = {}  # utterance -> (score, text) of its best failed try
    pending = list(range(mel.shape[0]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fallback.seed)
        for temperature in list(fallback.temperatures) or [0.0]:
            options = decoding_options(lang, beam_size, sample_len, temperature, fallback.best_of)
            still = []
            for i, result in zip(pending, _decode(model, mel[pending], options)):
                raw = transcript_text(result.tokens, tok)
                text = transcript_text(cut_repetition(result.tokens, fallback.max_repeats), tok)
                if not needs_fallback(result, raw, fallback):
                    texts[i] = text
                    continue
                repetitive = fallback.compression_ratio_threshold is not None and bool(raw) and \
                    compression_ratio(raw) > fallback.compression_ratio_threshold
                score = -np.inf if repetitive else float(result.avg_logprob)
                if i not in best or score > best[i][0]:
                    best[i] = (score, text)
                still.append(i)
            pending = still
            if not pending:
                break
    for i in pending:
        texts[i] = best[i][1]
    return texts
