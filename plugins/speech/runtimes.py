"""Exports for other runtimes: transformers and CTranslate2 (faster-whisper).

* :func:`export_transformers` writes a ``WhisperForConditionalGeneration`` directory with its
  generation config and processor files (feature extractor and tokenizer), which
  ``transformers.pipeline("automatic-speech-recognition", model=dir)`` loads. The tokenizer is
  built offline from openai-whisper's own BPE file (``whisper/assets/multilingual.tiktoken``) with
  Whisper's special tokens at the ids the plugin's tokenizer gives them.
* :func:`export_ctranslate2` converts such a directory with ctranslate2's transformers converter
  into a directory ``faster_whisper.WhisperModel(dir)`` loads (``tokenizer.json`` and
  ``preprocessor_config.json`` copied in, so nothing is fetched).

Both are written under the export directory (``transformers/`` and ``ctranslate2/``) when
``modality.export_formats`` names them; :func:`transcribe_transformers` and
:func:`transcribe_ctranslate2` decode log-mel features with either runtime, greedily, with the
prompt the plugin uses, for checking that an export transcribes as the project does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from whisper.model import ModelDimensions, Whisper

from framework.errors import FrameworkError
from plugins.speech.formats import whisper_to_hf_state
from plugins.speech.model import num_languages, window_seconds
from plugins.speech.tokens import language_code, tokenizer_for, vocab_languages

EXPORT_FORMATS = ("transformers", "ctranslate2")
CT2_QUANTIZATIONS = ("float32", "float16", "int8", "int8_float32", "int8_float16", "bfloat16")


@lru_cache(maxsize=4)
def _bpe(n_languages: int) -> tuple[dict[str, int], list[tuple[str, str]], list[str]]:
    """``(vocab, merges, special tokens in id order)`` of openai-whisper's multilingual tokenizer."""
    import whisper
    from transformers.convert_slow_tokenizer import TikTokenConverter

    asset = Path(whisper.__file__).parent / "assets" / "multilingual.tiktoken"
    vocab, merges = TikTokenConverter(vocab_file=str(asset)).extract_vocab_merges_from_model(str(asset))
    encoding = tokenizer_for(None, n_languages).encoding
    specials = sorted(encoding._special_tokens.items(), key=lambda kv: kv[1])  # noqa: SLF001 - tiktoken's table
    if specials[0][1] != len(vocab):
        raise FrameworkError(f"whisper's tokenizer starts its special tokens at {specials[0][1]}, after "
                             f"{len(vocab)} BPE tokens; this openai-whisper version is not supported")
    return vocab, merges, [name for name, _ in specials]


def hf_tokenizer(n_languages: int = 99) -> Any:
    """A transformers ``WhisperTokenizer`` with the plugin's token ids (checked on the special tokens)."""
    from transformers import AddedToken, WhisperTokenizer

    vocab, merges, specials = _bpe(n_languages)
    tokenizer = WhisperTokenizer(vocab=dict(vocab), merges=list(merges))
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials], special_tokens=True)
    ours = tokenizer_for(None, n_languages)
    for token_id in (ours.eot, ours.sot, ours.transcribe, ours.no_timestamps, ours.timestamp_begin):
        if tokenizer.convert_ids_to_tokens(token_id) != ours.decode_with_timestamps([token_id]):
            raise FrameworkError(f"the transformers tokenizer puts {tokenizer.convert_ids_to_tokens(token_id)!r} at "
                                 f"{token_id}; whisper has {ours.decode_with_timestamps([token_id])!r}")
    return tokenizer


def hf_config(model: Whisper) -> Any:
    """A transformers ``WhisperConfig`` of the model's dimensions (token ids from whisper's tokenizer)."""
    from transformers import WhisperConfig

    d = model.dims
    if d.n_audio_state != d.n_text_state:
        raise FrameworkError(f"transformers' Whisper has one width; this model's encoder is {d.n_audio_state} wide "
                             f"and its decoder {d.n_text_state}")
    tok = tokenizer_for(None, num_languages(d))
    return WhisperConfig(
        vocab_size=d.n_vocab, num_mel_bins=d.n_mels, encoder_layers=d.n_audio_layer,
        encoder_attention_heads=d.n_audio_head, decoder_layers=d.n_text_layer,
        decoder_attention_heads=d.n_text_head, d_model=d.n_audio_state, encoder_ffn_dim=4 * d.n_audio_state,
        decoder_ffn_dim=4 * d.n_text_state, max_source_positions=d.n_audio_ctx, max_target_positions=d.n_text_ctx,
        pad_token_id=tok.eot, bos_token_id=tok.eot, eos_token_id=tok.eot, decoder_start_token_id=tok.sot,
        tie_word_embeddings=True, begin_suppress_tokens=[tok.encode(" ")[0], tok.eot],
        suppress_tokens=list(tok.non_speech_tokens))


def hf_generation_config(model: Whisper) -> Any:
    """The generation config ``WhisperForConditionalGeneration.generate`` needs for language and task."""
    from transformers import GenerationConfig
    from whisper.tokenizer import LANGUAGES

    n_lang = num_languages(model.dims)
    tok = tokenizer_for(None, n_lang)
    langs = list(LANGUAGES)[:n_lang]
    return GenerationConfig(
        decoder_start_token_id=tok.sot, eos_token_id=tok.eot, pad_token_id=tok.eot, bos_token_id=tok.eot,
        max_length=model.dims.n_text_ctx, is_multilingual=True, no_timestamps_token_id=tok.no_timestamps,
        lang_to_id={f"<|{code}|>": tok.sot + 1 + i for i, code in enumerate(langs)},
        task_to_id={"transcribe": tok.transcribe, "translate": tok.translate},
        suppress_tokens=list(tok.non_speech_tokens), begin_suppress_tokens=[tok.encode(" ")[0], tok.eot],
        prev_sot_token_id=tok.sot_prev, return_timestamps=False)


def hf_feature_extractor(dims: ModelDimensions) -> Any:
    """A transformers ``WhisperFeatureExtractor`` for the model's mel bins, padding to its window."""
    from transformers import WhisperFeatureExtractor

    seconds = window_seconds(dims)
    extractor = WhisperFeatureExtractor(feature_size=dims.n_mels, chunk_length=30)
    # A window other than 30 s (models built from dims): the extractor pads to n_samples.
    extractor.chunk_length = seconds
    extractor.n_samples = int(round(seconds * extractor.sampling_rate))
    extractor.nb_max_frames = extractor.n_samples // extractor.hop_length
    return extractor


def export_transformers(model: Whisper, out_dir: Path) -> Path:
    """Write ``model`` as a transformers Whisper directory with processor files; returns ``out_dir``."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    out_dir = Path(out_dir)
    config = hf_config(model)
    hf_model = WhisperForConditionalGeneration(config)
    state = whisper_to_hf_state({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k != "proj_out.weight"]:
        raise FrameworkError(f"transformers export: missing {missing}, unexpected {unexpected}")
    hf_model.generation_config = hf_generation_config(model)
    hf_model.eval().save_pretrained(str(out_dir))
    extractor = hf_feature_extractor(model.dims)
    processor = WhisperProcessor(feature_extractor=extractor, tokenizer=hf_tokenizer(num_languages(model.dims)))
    processor.save_pretrained(str(out_dir))
    extractor.save_pretrained(str(out_dir))  # preprocessor_config.json too: faster-whisper reads it
    return out_dir


def export_ctranslate2(hf_dir: Path, out_dir: Path, quantization: str = "float32") -> Path:
    """Convert a transformers Whisper directory (:func:`export_transformers`) for faster-whisper.

    Raises:
        FrameworkError: ctranslate2 is not installed (the ``real`` extra), or an unknown quantization.
    """
    if quantization not in CT2_QUANTIZATIONS:
        raise FrameworkError(f"CTranslate2 quantization {quantization!r}; choose one of {', '.join(CT2_QUANTIZATIONS)}")
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise FrameworkError("the CTranslate2 export needs ctranslate2: pip install -e '.[real]'") from None
    converter = TransformersConverter(str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"],
                                      low_cpu_mem_usage=True)
    return Path(converter.convert(str(out_dir), quantization=quantization, force=True))


def _prompt(language: str, n_languages: int) -> list[int]:
    return list(tokenizer_for(language_code(language), n_languages).sot_sequence_including_notimestamps)


def _text(tokens: Sequence[int], n_languages: int) -> str:
    from plugins.speech.decode import transcript_text

    return transcript_text(tokens, tokenizer_for(None, n_languages))


def transcribe_transformers(hf_dir: Path, mel: torch.Tensor, language: str, max_new_tokens: int) -> list[str]:
    """Greedy transcripts of ``(B, n_mels, frames)`` log-mel features by a transformers export."""
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    n_lang = vocab_languages(model.config.vocab_size)
    prompt = torch.tensor([_prompt(language, n_lang)] * mel.shape[0])
    with torch.inference_mode():
        out = model.generate(input_features=mel, decoder_input_ids=prompt, max_new_tokens=max_new_tokens,
                             do_sample=False, num_beams=1)
    return [_text(row.tolist(), n_lang) for row in out]  # prompt tokens are special: dropped by _text


def transcribe_ctranslate2(ct2_dir: Path, mel: torch.Tensor, language: str, max_new_tokens: int) -> list[str]:
    """Greedy transcripts of ``(B, n_mels, frames)`` log-mel features by a CTranslate2 export,
    loaded the way faster-whisper loads it (``faster_whisper.WhisperModel(dir).model``)."""
    import ctranslate2
    from faster_whisper import WhisperModel

    runtime = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32")
    import json

    n_lang = len(json.loads((Path(ct2_dir) / "config.json").read_text(encoding="utf-8"))["lang_ids"])
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.float().numpy()))
    prompt = _prompt(language, n_lang)
    # ctranslate2 4.8 stops well short of max_length for short prompts (half of it, measured), so
    # ask for room and cut to max_new_tokens, the limit openai-whisper's sample_len sets.
    room = min(int(runtime.max_length), 2 * (len(prompt) + max_new_tokens))
    results = runtime.model.generate(features, [prompt] * mel.shape[0], beam_size=1, max_length=room,
                                     suppress_blank=True, suppress_tokens=[-1], return_scores=False)
    return [_text(r.sequences_ids[0][:max_new_tokens], n_lang) for r in results]

