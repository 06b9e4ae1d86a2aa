"""The alignment modality: CLIP-style image-text contrastive training.

``python -m framework +modality=alignment`` trains a tiny dual encoder (a 2-block ViT and a 2-layer
BERT-style encoder, both built from config) on the bundled shapes captions
(``examples/data/shapes``, written by ``examples/make_shapes.py``). ``model=clip model.clip=DIR``
starts from a transformers ``CLIPModel``; ``model.image.name=...`` / ``model.text.name=...`` swap
either tower. See ``conf/modality/alignment.yaml`` for every setting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np
from torch import nn

from framework.data.errors import DataError
from framework import train_stream
from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError
from framework.evaluation.types import EvalReport, Predictions
from framework.media.augment import apply, build_pipeline
from framework.media.images import ImageStore
from framework.modality import Modality, RunContext, StashKey
from plugins.alignment import evaluate as align_eval
from plugins.alignment.config import AlignmentConfig, AlignmentModelConfig
from plugins.alignment.data import CaptionDataset, PairDecoder, TokenCache, captions_of, check_captions
from plugins.alignment.export import SERVING_INFO, export_model, serving_info
from plugins.alignment.loop import train_alignment
from plugins.alignment.model import tower_param_groups
from plugins.alignment.task import AlignmentTask, task_from_config
from plugins._bundled import resolve_root, with_root

if TYPE_CHECKING:
    from framework.training import Engine

log = logging.getLogger(__name__)

STORE_KEY = StashKey[ImageStore]("alignment.store")  # the run's decoded-image cache, filled while loading
TRAIN_CAPTIONS_KEY = StashKey[list[str]]("alignment.train_captions")  # the caption pool of pre-annotation
# Each trained pair's mean margin over its hardest in-batch negative, keyed by (record id, caption
# index): left by ``train`` for the misalignment audit (``hard_to_learn``) that runs after it.
TRAINING_MARGINS_KEY = StashKey[dict[tuple[str, int], float]]("alignment.training_margins")
Ctx = RunContext[AlignmentConfig, AlignmentModelConfig]


def store_for(ctx: Ctx, task: Any) -> ImageStore:
    """The run's decoded-image store (``ctx.stash[STORE_KEY]``) when it matches ``task``'s input
    size, else a new one with the run's ``modality.resize`` policy, kept in the stash from then on."""
    store = ctx.stash.get(STORE_KEY)
    if store is None or tuple(store.size) != tuple(task.spec.size):
        store = ImageStore(tuple(task.spec.size), ctx.modality.resize, ctx.modality.cache_limit_mb)
        ctx.stash[STORE_KEY] = store
    return store


class AlignmentModality(Modality[AlignmentConfig, AlignmentModelConfig]):
    """Image-text alignment: a timm image tower and a transformers text tower trained with a
    symmetric InfoNCE loss; retrieval recall, zero-shot accuracy, per-slice and robustness
    figures; an audit of misaligned pairs with the trained model."""

    name: ClassVar[str] = "alignment"
    description: ClassVar[str] = "CLIP-style image-text contrastive training (timm + transformers towers)"
    label_type: ClassVar[str] = "text"
    sections: ClassVar[Mapping[str, type]] = {"modality": AlignmentConfig, "model": AlignmentModelConfig}

    # --- data --------------------------------------------------------------------------------

    def load_data(self, ctx: Ctx) -> DataBundle:
        """Read image-caption manifests with the core readers, decoding each image once.

        Images are decoded at the image tower's input size (known from its config, before the
        tower is built); every record's captions are validated (``file:line`` errors).
        """
        from framework.data.loading import load_bundle

        cfg = ctx.modality
        spec = self._input_spec(ctx)
        store = ImageStore(spec, cfg.resize, cfg.cache_limit_mb)
        root = resolve_root(ctx.data.root)
        data_cfg = with_root(ctx.data, root)
        probe = store.probe if getattr(data_cfg, "probe_media", True) else None
        bundle = load_bundle(data_cfg, decoder_check=probe, label_type="class")
        ctx.stash[STORE_KEY] = store
        captions = check_captions(bundle.records())
        ctx.stash[TRAIN_CAPTIONS_KEY] = sorted({c for r in bundle.records("train") for c in captions_of(r)})
        log.info("%d images with %d captions; decoded to RGB %s (%s), %.1f MB cached",
                 len(bundle.records()), captions, store.size, cfg.resize, store.cached_bytes / 2**20)
        return bundle

    @staticmethod
    def _input_spec(ctx: Ctx) -> tuple[int, int]:
        """The image tower's input size without building the towers (a CLIP's from its processor)."""
        from plugins.alignment.model import clip_image_spec, image_tower

        model = ctx.model
        if model.clip:
            return clip_image_spec(model.clip).size
        return image_tower(model.image, offline=True)[1].size

    # --- task --------------------------------------------------------------------------------

    def build_task(self, ctx: Ctx, data: DataBundle) -> nn.Module:
        """The dual encoder of ``model:``, its tokenizer and image normalisation."""
        task = task_from_config(ctx.model)
        trainable = sum(p.numel() for p in task.parameters() if p.requires_grad)
        log.info("dual encoder: %d parameters, %d trainable; image input %s, embeddings %d wide",
                 sum(p.numel() for p in task.parameters()), trainable, task.spec.size, task.image_proj.out_features)
        # Beside the checkpoints, so that any checkpoint of this run can be loaded for retrieval.
        serving_info(task, ctx.model, ctx.modality.resize).write(ctx.path(SERVING_INFO))
        return task

    def _dataset(self, ctx: Ctx, task: AlignmentTask, records: list[Record], pipeline: Any,
                 sample: bool) -> CaptionDataset:
        captions = [c for r in records for c in captions_of(r)]
        return CaptionDataset(records, store_for(ctx, task), TokenCache(task.tokenize, captions), pipeline, sample)

    # --- training ----------------------------------------------------------------------------

    def train(self, ctx: Ctx, engine: "Engine", task: nn.Module, data: DataBundle) -> None:
        """Train on ``train`` with ``modality.augment`` (one caption per image per epoch), validating
        the contrastive loss on ``val``. A train split read from tar shards is streamed
        (:func:`framework.train_stream`, ``data.shuffle_buffer``); its training margins are
        not kept, so the misalignment audit scores it without them."""
        cfg = ctx.modality
        augment = build_pipeline(cfg.augment, task.spec.size, "modality.augment")
        plain = build_pipeline(cfg.eval_augment, task.spec.size, "modality.eval_augment")
        stream = train_stream(ctx, data, PairDecoder(task.spec.size, cfg.resize, task.tokenize, augment))
        if stream is not None:  # tar shards: streamed, never held as a dataset in memory
            val_records = data.records("val")
            val_set = self._dataset(ctx, task, val_records, plain, sample=False) if len(val_records) > 1 else None
            train_alignment(engine, task, stream, val_set, eval_batch_size=cfg.eval_batch_size)
            return
        train_records = data.records("train")
        if len(train_records) < 2:
            raise FrameworkError(f"contrastive training needs at least 2 image-caption pairs in train; "
                                 f"got {len(train_records)} (check data.train)")
        train_set = self._dataset(ctx, task, train_records, augment, sample=True)
        val_records = data.records("val")
        val_set = self._dataset(ctx, task, val_records, plain, sample=False) if len(val_records) > 1 else None
        margins = train_alignment(engine, task, train_set, val_set, eval_batch_size=cfg.eval_batch_size,
                                  num_pairs=train_set.num_pairs, param_groups=self._param_groups(ctx, engine, task))
        ctx.stash[TRAINING_MARGINS_KEY] = {
            (record.id, k): float(margins[train_set.offsets[i] + k])
            for i, record in enumerate(train_records) for k in range(len(train_set.captions[i]))
        }

    @staticmethod
    def _param_groups(ctx: Ctx, engine: "Engine", task: nn.Module) -> list[dict[str, Any]] | None:
        """Per-tower learning rates when a tower's ``lr_scale`` is not 1 (else the engine's default groups)."""
        image_scale, text_scale = float(ctx.model.image.lr_scale), float(ctx.model.text.lr_scale)
        if image_scale == text_scale == 1.0:
            return None
        if ctx.model.clip:
            raise FrameworkError("model.image.lr_scale / model.text.lr_scale apply to towers built from "
                                 "model.image / model.text; with model.clip set, scale the whole run with trainer.lr")
        log.info("per-tower learning rates: image %g x trainer.lr, text %g x trainer.lr", image_scale, text_scale)
        return tower_param_groups(task, lr=engine.cfg.lr, weight_decay=engine.cfg.weight_decay,
                                  image_scale=image_scale, text_scale=text_scale)

    # --- prediction and evaluation -----------------------------------------------------------

    def predict(self, ctx: Ctx, task: nn.Module, records: list[Record], split: str) -> Predictions:
        """For each image, the caption the model ranks first (``outputs``) among the captions of
        ``records``, or of the train split when ``records`` have none (pre-annotating new images);
        ``targets`` is an image's own first caption (``None`` without one) and
        ``extras["confidence"]`` the cosine similarity of the chosen caption."""
        cfg = ctx.modality
        plain = build_pipeline(cfg.eval_augment, task.spec.size, "modality.eval_augment")
        own = [_maybe_captions(r) for r in records]
        pool = [c for caps in own for c in caps] or list(ctx.stash.get(TRAIN_CAPTIONS_KEY, []))
        if not pool:
            raise FrameworkError(f"split {split!r}: no captions to rank (the records and the train split have none)")
        store = store_for(ctx, task)
        images = task.encode_pixels([apply(plain, store.get(r)) for r in records], cfg.eval_batch_size)
        sims = images @ task.encode_texts(pool, cfg.eval_batch_size).T  # (N, M)
        best = sims.argmax(axis=1)
        return Predictions(split=split, ids=[r.id for r in records], targets=[caps[0] if caps else None for caps in own],
                           outputs=[pool[j] for j in best], slices=[dict(r.slices) for r in records],
                           extras={"confidence": sims[np.arange(len(records)), best].tolist()})

    def evaluate(self, ctx: Ctx, task: nn.Module, data: DataBundle, split: str) -> EvalReport:
        """Image-to-text and text-to-image recall@K and mean rank, zero-shot accuracy per class
        from ``modality.prompts`` (when every image has a label), per-slice recall@1 and recall
        under ``modality.robustness`` conditions."""
        cfg = ctx.modality
        records = data.records(split)
        if len(records) < 2:
            raise FrameworkError(f"split {split!r} has {len(records)} image(s); retrieval needs at least 2")
        plain = build_pipeline(cfg.eval_augment, task.spec.size, "modality.eval_augment")
        dataset = self._dataset(ctx, task, records, plain, sample=False)
        return align_eval.evaluation_report(task, dataset, split, ks=cfg.recall_at, prompts=cfg.prompts,
                                            classes=data.classes, conditions=cfg.robustness,
                                            batch_size=cfg.eval_batch_size, seed=ctx.seed)

    # --- monitoring --------------------------------------------------------------------------

    def drift_features(self, ctx: Ctx, records: list[Record]) -> dict[str, list[Any]]:
        """Per image: ``brightness``, ``contrast``, ``width``, ``height`` and ``mode`` of the file
        (:func:`framework.media.images.image_statistics`), and ``caption_words``, the length of its
        first caption (``None`` for images without one)."""
        from framework.media.images import image_statistics

        out = image_statistics(records)
        captions = [_maybe_captions(r) for r in records]
        out["caption_words"] = [len(caps[0].split()) if caps else None for caps in captions]
        return out

    # --- export ------------------------------------------------------------------------------

    def export(self, ctx: Ctx, task: nn.Module, out_dir: Path) -> list[Path]:
        """Weights + config, ``alignment.json``, the tokenizer, both towers in their libraries'
        formats and the projection heads (see :mod:`plugins.alignment.export`)."""
        return export_model(task, serving_info(task, ctx.model, ctx.modality.resize), out_dir, ctx.config_yaml,
                            onnx=ctx.modality.export_onnx)


def _maybe_captions(record: Record) -> list[str]:
    try:
        return captions_of(record)
    except DataError:  # unlabeled images (pre-annotation) have no caption
        return []
