"""The speech plugin's config nodes: ``modality:`` (:class:`SpeechConfig`) and ``model:``
(:class:`SpeechModelConfig`).

The core validates both nodes against these dataclasses, so a misspelled key is an error naming
the valid keys. Sample rate, FFT size and hop are *not* here: they are ``whisper.audio``'s
constants; the number of mel bins and the window length come from the model (``dims.n_mels``,
``dims.n_audio_ctx``), see :mod:`plugins.speech.model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class AudioConfig:
    """Decoding.

    Attributes:
        normalize: ``peak`` (to 0.9 of full scale), ``loudness`` (RMS to ``loudness_dbfs``) or ``none``.
        loudness_dbfs: Target RMS level of ``loudness`` normalisation.
        cache_limit_mb: Decoded 16 kHz audio is kept in memory up to this size.
        duration_tolerance: A file whose decoded length differs from the manifest's ``duration``
            by more than this fraction (and 0.1 s) is quarantined as ``duration_mismatch`` (a
            wrong sample rate in the header, or a wrong manifest).
    """

    normalize: str = "peak"
    loudness_dbfs: float = -20.0
    cache_limit_mb: int = 1024
    duration_tolerance: float = 0.1


@dataclass
class SpecAugmentConfig:
    """SpecAugment on training features (:class:`plugins.speech.features.SpecAugment`).

    Attributes:
        freq_masks: Frequency masks per utterance.
        freq_width: Each frequency mask covers fewer than this many mel bins.
        time_masks: Time masks per utterance.
        time_width: Each time mask covers fewer than this many frames (10 ms each).
        max_time_fraction: A time mask never covers more than this fraction of the frames.
    """

    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width: int = 40
    max_time_fraction: float = 0.2


@dataclass
class WaveAugmentConfig:
    """Waveform augmentation (:class:`plugins.speech.dataset.WaveAugment`); off by default.

    Attributes:
        speed: ``[low, high]`` speed factors; ``[1.0, 1.0]`` is off.
        speed_prob: Probability of a speed change per utterance.
        noise_snr_db: ``[low, high]`` SNR of added white noise; ``[]`` is off.
        noise_prob: Probability of added noise per utterance.
    """

    speed: list[float] = field(default_factory=lambda: [1.0, 1.0])
    speed_prob: float = 0.0
    noise_snr_db: list[float] = field(default_factory=list)
    noise_prob: float = 0.0


@dataclass
class NormalizerConfig:
    """Text normalisation before scoring (:class:`plugins.speech.text.TextNormalizer`); it never
    removes or transliterates a script.

    Attributes:
        lowercase: Fold case.
        unicode_form: ``NFC``, ``NFKC``, ``NFD``, ``NFKD`` or ``""`` (as is).
        remove_punctuation: Drop Unicode punctuation, including the danda.
        numbers: Write numbers one way before scoring: digits of any script as ASCII digits and
            spelled-out English numbers as digits (whisper's ``EnglishNumberNormalizer``), so
            ``twenty five`` and ``25`` match.
    """

    lowercase: bool = True
    unicode_form: str = "NFC"
    remove_punctuation: bool = True
    numbers: bool = False


@dataclass
class FallbackConfig:
    """Decoding guards for released Whisper (:mod:`plugins.speech.decode`), as whisper's ``transcribe``.

    Attributes:
        temperatures: Tried in order while a transcript needs a fallback; ``[0.0]`` turns it off.
        compression_ratio_threshold: A transcript whose gzip compression ratio is above this is too
            repetitive; ``null`` never checks.
        logprob_threshold: A transcript whose mean token log-probability is below this is too
            unlikely; ``null`` never checks.
        no_speech_threshold: With a low log-probability, a no-speech probability above this means
            silence, which is not decoded again; ``null`` never checks.
        best_of: Samples drawn per utterance at a temperature above 0 (the most likely is kept).
        max_repeats: More consecutive copies of one token n-gram than this are cut to one; 0 never cuts.
        seed: Seed of the sampling at temperatures above 0 (reruns give the same transcripts).
    """

    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    compression_ratio_threshold: Optional[float] = 2.4
    logprob_threshold: Optional[float] = -1.0
    no_speech_threshold: Optional[float] = 0.6
    best_of: int = 5
    max_repeats: int = 3
    seed: int = 0


@dataclass
class SpeechConfig:
    """The ``modality:`` node of ``+modality=speech``.

    Attributes:
        name: The modality's name (set by ``+modality=speech``).
        language: Primary language of utterances whose manifest line has no ``language``.
        timestamps: Train with timestamp tokens (``<|0.00|> text <|T|>``) instead of ``<|notimestamps|>``.
        audio: Decoding and normalisation.
        spec_augment: Feature masks in training.
        augment: Waveform augmentation in training.
        bucket_by_duration: Batch utterances of similar duration together (less decoder padding).
        beam_size: Evaluation decoding: 0/1 greedy, more for beam search.
        sample_len: Most tokens generated per utterance; ``null`` is half the text context.
        fallback: Temperature fallback and repetition guards of decoding.
        eval_batch_size: Utterances per decoding batch.
        normalizer: Text normalisation for WER/CER.
        script_languages: Which language each script's words count as, for per-language WER
            and switch points (``devanagari: hi``, ``latin: en``).
        robustness_snr_db: WER with white noise added at these SNRs (``robust/snr_<db>/wer``).
        val_wer_every: During training, decode the val split for ``val_wer`` at each validation
            (costs decoding time); false reports val loss and token accuracy only.
        eval_language: ``given`` decodes with each utterance's manifest language; ``detect``
            also identifies the language from the audio (:mod:`plugins.speech.langid`) and
            reports ``language_id/accuracy`` and ``wer_detected`` beside ``wer``.
        language_candidates: The languages detection chooses among (codes or names); empty:
            every language the model has a token for.
        export_formats: Runtimes exported beside ``model.pt``: ``transformers`` (a
            ``WhisperForConditionalGeneration`` directory with processor files) and ``ctranslate2``
            (for faster-whisper; needs the ``real`` extra), see :mod:`plugins.speech.runtimes`.
        ctranslate2_quantization: Weight type of the CTranslate2 export (``float32``, ``float16``,
            ``int8``, ``int8_float32``...).
    """

    name: str = "speech"
    language: str = "en"
    timestamps: bool = False
    audio: AudioConfig = field(default_factory=AudioConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: WaveAugmentConfig = field(default_factory=WaveAugmentConfig)
    bucket_by_duration: bool = False
    beam_size: int = 0
    sample_len: Optional[int] = None
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    eval_batch_size: int = 32
    normalizer: NormalizerConfig = field(default_factory=NormalizerConfig)
    script_languages: dict[str, str] = field(default_factory=lambda: {"devanagari": "hi", "latin": "en"})
    robustness_snr_db: list[float] = field(default_factory=lambda: [20.0, 10.0, 5.0])
    val_wer_every: bool = False
    eval_language: str = "given"
    language_candidates: list[str] = field(default_factory=list)
    export_formats: list[str] = field(default_factory=list)
    ctranslate2_quantization: str = "float32"


@dataclass
class LoraConfig:
    """LoRA adapters (peft) for ``model.finetune=lora``.

    Attributes:
        r: Rank of the adapters.
        alpha: Scaling (``alpha / r``).
        dropout: Dropout on the adapter input.
        target_modules: Module names to adapt; default every attention projection
            (``query``, ``key``, ``value``, ``out``).
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["query", "key", "value", "out"])


@dataclass
class SpeechModelConfig:
    """The ``model:`` node: a released Whisper, a local checkpoint, or dimensions.

    Attributes:
        name: A released size (``tiny``, ``base``, ``small``, ``medium``, ``large-v3``, ``turbo``...)
            or a local whisper checkpoint path; ``null`` builds from ``dims``.
        download_root: whisper's download cache (``~/.cache/whisper`` when ``null``).
        dims: ``whisper.model.ModelDimensions`` fields, used when ``name`` is ``null``.
        init_seed: Seed of the random initialisation of a model built from ``dims``.
        finetune: ``full``, ``decoder`` (encoder frozen) or ``lora``.
        freeze_encoder_blocks: Freeze the convolution stem and the first N encoder blocks.
        lora: LoRA settings, for ``finetune: lora``.
    """

    name: Optional[str] = None
    download_root: Optional[str] = None
    dims: dict[str, Any] = field(default_factory=dict)
    init_seed: int = 0
    finetune: str = "full"
    freeze_encoder_blocks: int = 0
    lora: LoraConfig = field(default_factory=LoraConfig)
