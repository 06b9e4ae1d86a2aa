"""The text plugin's config nodes: ``modality:`` (:class:`TextConfig`) and ``model:``
(:class:`TextModelConfig`).

The core validates both against these dataclasses, so a misspelled key is an error naming the
valid keys. ``modality.method`` selects the objective: ``sft`` (chat conversations) or ``dpo``
(preference pairs); ``+modality=text_dpo`` is ``+modality=text`` with ``method: dpo`` and the
bundled preference data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

METHODS = ("sft", "dpo")
DPO_LOSSES = ("sigmoid", "ipo", "hinge")
MASK_SOURCES = ("auto", "generation", "prefix")


@dataclass
class SFTConfig:
    """Supervised fine-tuning on ``messages``.

    Attributes:
        assistant_only: Train on assistant tokens only (the loss mask); ``false`` trains on every
            token, which the loss-mask audit then reports as training on the prompt.
        mask_source: Where the assistant mask comes from: ``generation`` (the template's
            ``{% generation %}`` markers), ``prefix`` (render the conversation turn by turn and
            mark what each assistant turn adds), ``auto`` (markers when the template has them,
            else prefix).
        packing: Pack several examples into each ``max_length`` sequence; position ids restart
            per example and attention never crosses examples.
    """

    assistant_only: bool = True
    mask_source: str = "auto"
    packing: bool = True


@dataclass
class DPOConfig:
    """Direct preference optimisation on ``prompt``/``chosen``/``rejected``.

    Attributes:
        loss: ``sigmoid`` (DPO), ``ipo`` (squared loss on length-normalised log-ratios) or
            ``hinge`` (SLiC).
        beta: Strength of the implicit KL penalty towards the reference policy.
        label_smoothing: Assumed probability that a pair's label is flipped (conservative DPO);
            sigmoid loss only.
        reference: ``auto`` (adapters disabled under LoRA, else precomputed), ``adapters_off``
            (the base model with LoRA adapters disabled: no second copy), ``precomputed``
            (reference log-probs of every pair computed once before training).
    """

    loss: str = "sigmoid"
    beta: float = 0.1
    label_smoothing: float = 0.0
    reference: str = "auto"


@dataclass
class HallucinationConfig:
    """Hallucination probes (:mod:`plugins.text.hallucination`): questions about entities that do
    not exist, questions whose answer is not in the given context, false premises. A probe passes
    when the model declines or corrects rather than inventing. Reported as
    ``hallucination/<kind>/pass_rate`` and ``hallucination/pass_rate``.

    Attributes:
        files: Probe JSONL files (the bundled set, your domain's); relative paths resolve
            against the working directory, else the repository. Empty: no hallucination probes.
        accept: Extra regular expressions counted as a refusal or correction, for every probe
            (a phrase your assistant is trained to say: ``"please contact support"``).
        max_new_tokens: Generation budget per answer (a refusal takes a sentence).
    """

    files: list[str] = field(default_factory=list)
    accept: list[str] = field(default_factory=list)
    max_new_tokens: int = 32


@dataclass
class ProbeConfig:
    """The adversarial suite: a JSONL of probes, each ``{"id", "category", "kind", "prompts",
    "expected"}`` with ``kind`` ``sycophancy`` (one prompt with a false premise; passes when the
    answer is ``expected``) or ``consistency`` (several wordings; passes when every answer is the
    same and equals ``expected``). Reported as ``probe/<category>/pass_rate``. ``hallucination``
    is the hallucination suite (:class:`HallucinationConfig`).
    """

    file: Optional[str] = None
    max_new_tokens: int = 16
    hallucination: HallucinationConfig = field(default_factory=HallucinationConfig)


@dataclass
class TextConfig:
    """The ``modality:`` node of ``+modality=text``.

    Attributes:
        name: The modality's name (``text``).
        method: ``sft`` or ``dpo``.
        max_length: Tokens per sequence; longer examples are truncated and counted by the audit.
        chat_template: ``null`` uses the tokenizer's template (the fallback when it has none);
            ``fallback`` forces :data:`plugins.text.chat.FALLBACK_TEMPLATE`; a path ending in
            ``.jinja`` is read; any other string is used as the Jinja template itself.
        sft: SFT settings.
        dpo: DPO settings.
        probes: The adversarial suite.
        eval_batch_size: Sequences per batch in validation and evaluation.
        max_new_tokens: Generation budget for exact match.
        generation_limit: Held-out prompts generated per split (0: all).
        preview: Examples ``python -m plugins.text.preview`` prints.
        baseline: Also evaluate the starting model (LoRA adapters disabled) and report its
            figures as ``baseline/<metric>`` beside the trained model's.
    """

    name: str = "text"
    method: str = "sft"
    max_length: int = 64
    chat_template: Optional[str] = None
    sft: SFTConfig = field(default_factory=SFTConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    eval_batch_size: int = 64
    max_new_tokens: int = 16
    generation_limit: int = 0
    preview: int = 3
    baseline: bool = True


@dataclass
class LoRAConfig:
    """LoRA adapters (peft). ``rank: 0`` means full fine-tuning.

    Attributes:
        rank: Adapter rank ``r``.
        alpha: Scaling ``lora_alpha`` (the update is scaled by ``alpha / rank``).
        dropout: Dropout on the adapter input.
        target_modules: Module names to adapt, or ``all-linear`` (every linear layer but the head).
        quantize: ``null`` or ``4bit`` (QLoRA: needs bitsandbytes and a CUDA device).
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: Any = "all-linear"
    quantize: Optional[str] = None


@dataclass
class TextModelConfig:
    """The ``model:`` node: a causal LM and its tokenizer, by hub name or local directory.

    Attributes:
        name: ``Qwen/Qwen2.5-0.5B-Instruct`` or a local directory; relative paths resolve
            against the working directory, else the repository.
        tokenizer: Tokenizer name or directory; ``null`` is ``name``.
        revision: Hub revision (a tag or commit) for reproducible downloads.
        trust_remote_code: Run code shipped with the model; off unless you trust it.
        dtype: ``auto`` (as saved), ``float32``, ``bfloat16`` or ``float16``.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``; ``null`` lets
            transformers choose.
        gradient_checkpointing: Recompute activations in backward (less memory, slower).
        lora: Adapter settings.
        local_files_only: Never download (the bundled default); set false for hub names.
    """

    name: str = "examples/models/tiny-unit-lm"
    tokenizer: Optional[str] = None
    revision: Optional[str] = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    attn_implementation: Optional[str] = "sdpa"
    gradient_checkpointing: bool = False
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    local_files_only: bool = True
