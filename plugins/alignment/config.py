"""The alignment plugin's config nodes: ``modality:`` (:class:`AlignmentConfig`) and ``model:``
(:class:`AlignmentModelConfig`).

The core validates both nodes against these dataclasses, so a misspelled key is an error naming
the valid keys. Transform pipelines (``augment``, ``eval_augment``, each ``robustness`` condition)
are the same ordered ``name -> arguments`` mappings as the vision plugin's, built by
:mod:`framework.media.augment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class AuditConfig:
    """The misalignment audit (``modality.audit``): which pairs are flagged as suspect.

    Attributes:
        splits: Splits whose pairs are scored.
        outlier_mads: A pair is a similarity outlier when its image-caption similarity is more
            than this many median absolute deviations below the median of all pairs.
        better_margin: A caption "matches another image far better" when its similarity to some
            other image exceeds its similarity to its own image by more than this margin
            (cosine similarity, so on a [-2, 2] scale).
        max_suspect_fraction: The check passes when at most this fraction of pairs is suspect.
        gate: Make a failed check stop the run (it runs after training, so it stops before
            evaluation and export).
        batch_size: Batch size of the scoring pass.
    """

    splits: list[str] = field(default_factory=lambda: ["train"])
    outlier_mads: float = 4.0
    better_margin: float = 0.1
    max_suspect_fraction: float = 0.05
    gate: bool = False
    batch_size: int = 256


@dataclass
class AlignmentConfig:
    """The ``modality:`` node of ``+modality=alignment``.

    Attributes:
        name: The modality's name (set by ``+modality=alignment``).
        resize: How a decoded image reaches the image tower's input size, once, at decode time
            (``stretch``, ``pad`` or ``crop``; see :func:`framework.media.images.resize_to`);
            training images decoded on the fly skip it when ``augment`` starts with a
            ``RandomResizedCrop`` to the input size (the crop is taken from the decoded file).
        augment: Training transforms (albumentations name -> arguments, ``null`` disables one).
        eval_augment: Transforms for evaluation and encoding; usually empty.
        robustness: Evaluation conditions, name -> transform pipeline (each transform applied with
            ``p: 1`` unless given); reported as ``robust/<name>/i2t_r1`` and ``.../t2i_r1``.
        prompts: Zero-shot prompt templates; ``{}`` is replaced by a class name. Used when the
            manifest has labels: each class's text embedding is the mean over the templates.
        recall_at: The K of the reported recall@K figures.
        audit: The misalignment audit's settings.
        eval_batch_size: Batch size of evaluation and encoding.
        cache_limit_mb: Decoded images are kept in memory when they fit in this budget.
        export_onnx: The export stage also writes ``image_encoder.onnx`` (uint8 images in) and
            ``text_encoder.onnx`` (``input_ids`` and ``attention_mask`` in), both giving
            L2-normalised embeddings, checked against onnxruntime (needs the ``real`` extra).
    """

    name: str = "alignment"
    resize: str = "stretch"
    augment: dict[str, Any] = field(default_factory=dict)
    eval_augment: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, Any] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=lambda: ["a {}", "a picture of a {}"])
    recall_at: list[int] = field(default_factory=lambda: [1, 5, 10])
    audit: AuditConfig = field(default_factory=AuditConfig)
    eval_batch_size: int = 256
    cache_limit_mb: int = 2048
    export_onnx: bool = False


@dataclass
class ImageTowerConfig:
    """The image tower: any timm model by name, used as a feature extractor (no classifier head).

    Attributes:
        name: A timm model name (``timm.list_models()``).
        pretrained: Load the architecture's published weights (needs network or a warm cache).
        checkpoint_path: A local weights file to start from instead.
        image_size: Input side in pixels; ``null`` takes the architecture's default.
        kwargs: Further ``timm.create_model`` arguments (``depth``, ``embed_dim``...), for whichever
            model ``name`` is; ``null`` or ``{}`` for none.
        kwargs_by_name: ``timm.create_model`` arguments that apply only while ``name`` is their key
            (``kwargs`` win over them): ``dual_tiny`` shrinks its ViT here, so choosing another
            ``model.image.name`` drops the shrinking without naming its keys.
        lr_scale: This tower's learning rate as a multiple of ``trainer.lr`` (its projection head
            trains at ``trainer.lr``); below 1 keeps pretrained weights from being pulled to chance.
    """

    name: str = "vit_tiny_patch16_224"
    pretrained: bool = False
    checkpoint_path: Optional[str] = None
    image_size: Optional[int] = None
    kwargs: Optional[dict[str, Any]] = field(default_factory=dict)
    kwargs_by_name: Optional[dict[str, dict[str, Any]]] = field(default_factory=dict)
    lr_scale: float = 1.0


@dataclass
class LoraConfig:
    """LoRA adapters on the text tower (peft); ``r: 0`` switches them off.

    With LoRA on, the text tower's own weights are frozen and only the adapters (and the
    projection heads) train.
    """

    r: int = 0
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])


@dataclass
class TextTowerConfig:
    """The text tower: any transformers encoder by hub name or local directory.

    Attributes:
        name: Hub name or local directory of a pretrained encoder; ``null`` builds a BERT-style
            encoder from ``config`` (random weights, no download).
        tokenizer: Hub name or directory of the tokenizer; ``null`` uses ``name``'s own, or the
            tokenizer the project ships (``plugins/alignment/tokenizer``) when ``name`` is null. A
            tokenizer whose vocabulary does not fit the encoder's embedding table is an error.
        architecture: The transformers model type built from ``config`` when ``name`` is null:
            ``bert`` (bidirectional), ``clip_text_model`` (CLIP's causal text transformer; pool
            it with ``last``), or any other encoder type transformers knows.
        config: Arguments of that architecture's config class (``transformers.BertConfig``,
            ``CLIPTextConfig``...). ``vocab_size`` (at least the tokenizer's; larger pads the
            table), the special token ids and ``max_position_embeddings`` default to the
            tokenizer's and ``max(64, max_length)``.
        pooling: ``cls`` (the first token), ``mean`` (mean of the non-padding tokens) or ``last``
            (the last non-padding token: the end-of-text token, as CLIP pools).
        max_length: Captions are truncated (and padded) to this many tokens.
        lora: LoRA adapters on this tower.
        lr_scale: This tower's learning rate as a multiple of ``trainer.lr`` (see
            :attr:`ImageTowerConfig.lr_scale`).
    """

    name: Optional[str] = None
    tokenizer: Optional[str] = None
    architecture: str = "bert"
    config: dict[str, Any] = field(default_factory=dict)
    pooling: str = "mean"
    max_length: int = 32
    lora: LoraConfig = field(default_factory=LoraConfig)
    lr_scale: float = 1.0


@dataclass
class AlignmentModelConfig:
    """The ``model:`` node: a dual encoder.

    Attributes:
        name: A label for the configuration, shown in sweep tables (``dual_tiny``, ``dual_clip``).
        image: The image tower.
        text: The text tower.
        clip: Hub name or local directory of a transformers ``CLIPModel``; when set, both towers,
            their projections, the temperature, the tokenizer and the image normalisation come
            from it and ``image``/``text`` are ignored (except ``text.max_length``/``lora``).
        embed_dim: Width of the shared embedding space (the projection heads' output).
        temperature: Initial softmax temperature of the contrastive loss (learned).
        max_logit_scale: The learned ``1 / temperature`` is clamped to at most this value.
        freeze_image: Train the image tower's weights (``false``) or only its projection.
        freeze_text: The same for the text tower.
    """

    name: str = "dual_encoder"
    image: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    clip: Optional[str] = None
    embed_dim: int = 64
    temperature: float = 0.07
    max_logit_scale: float = 100.0
    freeze_image: bool = False
    freeze_text: bool = False
