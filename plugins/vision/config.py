"""The vision plugin's config nodes: ``modality:`` (:class:`VisionConfig`) and ``model:``
(:class:`VisionModelConfig`).

The core validates both nodes against these dataclasses, so a misspelled key in a YAML file or an
override is an error naming the valid keys. Input size, mean and std are *not* here: they come
from the model (``timm.data.resolve_data_config``), see :mod:`plugins.vision.model`.

Transform pipelines (``augment``, ``eval_augment`` and each ``robustness`` condition) are ordered
mappings of an albumentations transform name to its arguments; ``null`` switches one off, so
``modality.augment.HorizontalFlip=null`` or ``+modality.augment.GaussianBlur={p:0.2}`` work from
the command line. A transform that takes an output ``size`` gets the model's input size unless
the arguments give one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class MixupConfig:
    """Mixup / CutMix (``timm.data.Mixup``); both alphas ``0`` switch it off.

    With mixup on, the loss is soft-target cross-entropy and ``label_smoothing`` is folded into
    the mixed targets; training batches drop their last incomplete batch (mixup needs even ones).
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0  # probability of mixing a batch
    switch_prob: float = 0.5  # probability of CutMix instead of Mixup when both are on


@dataclass
class VisionConfig:
    """The ``modality:`` node of ``+modality=vision``.

    Attributes:
        name: The modality's name (set by ``+modality=vision``).
        resize: How a decoded image reaches the model's input size, once, at decode time:
            ``stretch`` (direct resize, aspect ratio not kept), ``pad`` (fit the longer side, pad
            the rest with black) or ``crop`` (fit the shorter side, centre crop). Training images
            that are decoded on the fly (not cached) skip it when ``augment`` starts with a
            ``RandomResizedCrop`` to the input size: the crop is taken from the decoded file and
            resized once, as timm trains.
        augment: Training transforms, name -> arguments (``null`` disables one), in order.
        eval_augment: Transforms for evaluation and prediction; usually empty, since decoding
            already produced the input size.
        mixup: Mixup / CutMix settings.
        label_smoothing: Label smoothing of the cross-entropy loss.
        robustness: Evaluation conditions, condition name -> transform pipeline (each transform
            applied with ``p: 1`` unless given); reported as ``robust/<name>/accuracy``.
        critical_classes: Classes whose recall matters most; reported as ``critical_min_recall``
            with a note per class.
        top_k: Number of ranked classes written per image by batch prediction.
        eval_batch_size: Batch size of evaluation and prediction.
        cache_limit_mb: Decoded images are kept in memory when they fit in this budget; larger
            data sets are decoded on the fly (each epoch).
        channels_last: Use the channels-last memory format on CUDA (faster convolutions).
        export_onnx: The export stage also writes ``model.onnx`` (uint8 images in, probabilities
            out, any batch size), checked against onnxruntime (needs the ``real`` extra).
    """

    name: str = "vision"
    resize: str = "stretch"
    augment: dict[str, Any] = field(default_factory=dict)
    eval_augment: dict[str, Any] = field(default_factory=dict)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    label_smoothing: float = 0.0
    robustness: dict[str, Any] = field(default_factory=dict)
    critical_classes: list[str] = field(default_factory=list)
    top_k: int = 3
    eval_batch_size: int = 256
    cache_limit_mb: int = 2048
    channels_last: bool = True
    export_onnx: bool = False


@dataclass
class VisionModelConfig:
    """The ``model:`` node: any timm classifier, by name.

    Attributes:
        name: A timm model name (``timm.list_models()``), e.g. ``vit_tiny_patch16_224``.
        pretrained: Load the architecture's published weights (needs network or a warm cache).
        checkpoint_path: A local weights file (``.safetensors``/``.pth``) to start from instead;
            the classifier head is replaced when its class count differs.
        image_size: Input side in pixels; ``null`` takes the architecture's default. For
            architectures with a fixed input size (ViTs) it is passed to the constructor too.
        drop_rate: Dropout before the classifier.
        drop_path_rate: Stochastic depth rate.
        kwargs: Further ``timm.create_model`` arguments (``depth``, ``embed_dim``, ``patch_size``...),
            for whichever model ``name`` is; ``null`` or ``{}`` for none.
        kwargs_by_name: ``timm.create_model`` arguments that apply only while ``name`` is their key
            (``kwargs`` win over them): the shipped configs shrink their default architecture
            here, so choosing another ``model.name`` drops the shrinking without naming its keys.
    """

    name: str = "vit_tiny_patch16_224"
    pretrained: bool = False
    checkpoint_path: Optional[str] = None
    image_size: Optional[int] = None
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    kwargs: Optional[dict[str, Any]] = field(default_factory=dict)
    kwargs_by_name: Optional[dict[str, dict[str, Any]]] = field(default_factory=dict)
