"""Transcribing utterances with whisper's own decoder, each with its language token.

Utterances are grouped by primary language so every decoder prompt is
``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>`` for that utterance's language;
decoding is greedy (``beam_size`` 0/1) or beam search, through ``whisper.decoding.decode``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from whisper.decoding import DecodingOptions, decode
from whisper.model import Whisper

from plugins.speech.dataset import pad_or_trim
from plugins.speech.features import LogMel
from plugins.speech.model import window_samples
from plugins.speech.tokens import language_code


def decoding_options(language: str, beam_size: int = 0, sample_len: int | None = None) -> DecodingOptions:
    """Whisper's options for one language: greedy for ``beam_size <= 1``, no timestamps, fp32."""
    return DecodingOptions(task="transcribe", language=language_code(language), without_timestamps=True,
                           beam_size=beam_size if beam_size > 1 else None, fp16=False, sample_len=sample_len)


@torch.inference_mode()
def transcribe(
    model: Whisper,
    audio: Sequence[np.ndarray],
    languages: Sequence[str],
    *,
    beam_size: int = 0,
    batch_size: int = 32,
    sample_len: int | None = None,
) -> list[str]:
    """The transcript of each 16 kHz utterance, in input order.

    Args:
        model: A plain Whisper model (``task.whisper()`` merges LoRA adapters); it is put in eval mode.
        audio: 16 kHz mono utterances; each is padded or cut to the model's window.
        languages: Each utterance's primary language (a code or a name).
        beam_size: 0 or 1 decodes greedily; more runs beam search with that many beams.
        batch_size: Utterances per decoder batch (greedy; beam search decodes one at a time).
        sample_len: Most tokens to generate; ``None`` is half the text context (whisper's default).
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
    try:
        for lang, idx in groups.items():
            options = decoding_options(lang, beam_size, sample_len)
            # openai-whisper's beam search repeats the tokens but not the audio features by the beam
            # count, so batches of more than one utterance fail in cross-attention (openai/whisper
            # PR #2197, #2389, unmerged); one utterance at a time broadcasts correctly.
            step = batch_size if options.beam_size is None else 1
            for start in range(0, len(idx), step):
                chunk = idx[start : start + step]
                batch = torch.from_numpy(np.stack([pad_or_trim(audio[i], window) for i in chunk])).to(device)
                results = decode(model, features(batch), options)  # one DecodingResult per utterance
                for i, result in zip(chunk, results):
                    out[i] = result.text.strip()
    finally:
        model.train(was_training)
    return out
