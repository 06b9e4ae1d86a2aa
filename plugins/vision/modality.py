"""The vision modality: image classification with any timm model.

``python -m framework +modality=vision`` trains a tiny ViT on the bundled digits; ``model=efficientnet``
swaps the architecture, ``data.train=<folder or manifest>`` the data. See ``conf/modality/vision.yaml``
for every setting and :mod:`plugins.vision.config` for what each one means.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from torch import nn

from framework import split_shards, train_stream
from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError
from framework.evaluation.types import EvalReport, Predictions
from framework.evaluation import classification as cls_eval
from framework.modality import Modality, RunContext, StashKey
from plugins._bundled import resolve_root, split_defaults, with_root
from plugins.vision import evaluate as vision_eval
from framework.media.augment import build_pipeline
from plugins.vision.checks import IMAGE_INFO_KEY
from plugins.vision.config import VisionConfig, VisionModelConfig
from plugins.vision.dataset import ClassDecoder, ImageDataset
from plugins.vision.export import SERVING_INFO, export_model, serving_info
from framework.media.images import ImageStore
from plugins.vision.loop import train_classifier
from plugins.vision.model import build_model, input_spec, require_reachable_weights
from plugins.vision.task import ImageClassificationTask

if TYPE_CHECKING:
    from framework.training import Engine

log = logging.getLogger(__name__)

CONF_FILE = Path(__file__).parent / "conf" / "modality" / "vision.yaml"
STORE_KEY = StashKey[ImageStore]("vision.store")  # the run's decoded-image cache, shared by the methods
Ctx = RunContext[VisionConfig, VisionModelConfig]


def _labeled(records: list[Record]) -> list[Record]:
    return [r for r in records if r.label is not None]


class VisionModality(Modality[VisionConfig, VisionModelConfig]):
    """Image classification: decode once to RGB at the model's input size, train with
    albumentations + mixup on the engine, report per class, per slice and under perturbations."""

    name: ClassVar[str] = "vision"
    description: ClassVar[str] = "image classification with timm models (ViT, EfficientNet, any timm classifier)"
    label_type: ClassVar[str] = "class"
    sections: ClassVar[Mapping[str, type]] = {"modality": VisionConfig, "model": VisionModelConfig}

    # --- data --------------------------------------------------------------------------------

    def load_data(self, ctx: Ctx) -> DataBundle:
        """Read image folders or CSV/JSONL manifests with the core readers, decoding each image once.

        The readers' decoding check is this plugin's decoder, so the decode that proves a file
        usable also converts it to RGB at the model's input size and caches it; undecodable files
        are quarantined with the reason. Original modes and sizes go to ``extras["image_info"]``
        for the audit's mode and resolution checks.
        """
        from framework.data.loading import load_bundle

        require_reachable_weights(ctx.model)  # offline pretrained=true: said before the audit, not after it
        cfg = ctx.modality
        store = ImageStore(input_spec(ctx.model).size, cfg.resize, cfg.cache_limit_mb)
        data_cfg = with_root(ctx.data, resolve_root(ctx.data.root))
        probe = store.probe if getattr(data_cfg, "probe_media", True) else None
        bundle = load_bundle(data_cfg, decoder_check=probe, label_type="class",
                             split_defaults=split_defaults(CONF_FILE))
        bundle.extras[IMAGE_INFO_KEY] = store.info
        if split_shards(bundle, "train"):  # streamed by train: its probed pixels are not kept
            store.release(bundle.records("train"))
        ctx.stash[STORE_KEY] = store
        modes = Counter(info.mode for info in store.info.values())
        log.info("decoded %d images to RGB %s (%s; source modes %s), %.1f MB cached",
                 len(store.info), store.size, cfg.resize, dict(modes), store.cached_bytes / 2**20)
        return bundle

    def _store(self, ctx: Ctx, spec_size: tuple[int, int]) -> ImageStore:
        store = ctx.stash.get(STORE_KEY)
        if store is None or store.size != tuple(spec_size):
            store = ImageStore(tuple(spec_size), ctx.modality.resize, ctx.modality.cache_limit_mb)
            ctx.stash[STORE_KEY] = store
        return store

    # --- task --------------------------------------------------------------------------------

    def build_task(self, ctx: Ctx, data: DataBundle) -> nn.Module:
        """A timm classifier sized to ``data.classes``, with its normalisation and loss."""
        from timm.data import Mixup

        cfg = ctx.modality
        if len(data.classes) < 2:
            raise FrameworkError(
                f"image classification needs at least 2 classes; the data has {data.classes or 'none'} "
                f"(check data.train: class folders, or a 'label' field in the manifest)"
            )
        model = build_model(ctx.model, len(data.classes))
        mix = cfg.mixup
        mixup = None
        if mix.mixup_alpha > 0 or mix.cutmix_alpha > 0:
            mixup = Mixup(mixup_alpha=mix.mixup_alpha, cutmix_alpha=mix.cutmix_alpha, prob=mix.prob,
                          switch_prob=mix.switch_prob, label_smoothing=cfg.label_smoothing,
                          num_classes=len(data.classes))
        task = ImageClassificationTask(model, data.classes, input_spec(ctx.model), cfg.label_smoothing, mixup,
                                       channels_last=cfg.channels_last)
        # Beside the checkpoints, so that any checkpoint of this run can serve predictions.
        serving_info(task, ctx.model, cfg.resize, cfg.top_k).write(ctx.path(SERVING_INFO))
        return task

    # --- training ----------------------------------------------------------------------------

    def train(self, ctx: Ctx, engine: "Engine", task: nn.Module, data: DataBundle) -> None:
        """Train on ``train`` with ``modality.augment``, validating on ``val`` (loss and accuracy).

        A train split read from tar shards is streamed (:func:`framework.train_stream`): each loader
        worker decodes its samples as it hands them out, nothing is cached for the epoch."""
        cfg = ctx.modality
        store = self._store(ctx, task.spec.size)
        augment = build_pipeline(cfg.augment, task.spec.size, "modality.augment")
        plain = build_pipeline(cfg.eval_augment, task.spec.size, "modality.eval_augment")
        stream = train_stream(ctx, data, ClassDecoder(task.spec.size, cfg.resize, task.classes, augment))
        train_set = stream if stream is not None else ImageDataset(_labeled(data.records("train")), store,
                                                                   task.classes, augment)
        items = sum(stream.counts) if stream is not None else len(train_set)
        val_records = _labeled(data.records("val"))
        val_set = ImageDataset(val_records, store, task.classes, plain) if val_records else None
        batch_size = engine.cfg.batch_size
        train_classifier(
            engine, task, train_set, val_set,
            eval_batch_size=cfg.eval_batch_size,
            channels_last=cfg.channels_last and engine.device.type == "cuda",
            # timm's Mixup pairs each item with its mirror in the batch, so batches must be even.
            drop_last=task.mixup is not None and items > batch_size,
        )

    # --- prediction and evaluation -----------------------------------------------------------

    def predict(self, ctx: Ctx, task: nn.Module, records: list[Record], split: str) -> Predictions:
        """Class names (``outputs``) and softmax probabilities ``(N, C)`` (``scores``) of ``records``;
        labels are optional."""
        cfg = ctx.modality
        store = self._store(ctx, task.spec.size)
        plain = build_pipeline(cfg.eval_augment, task.spec.size, "modality.eval_augment")
        probs = vision_eval.predict_probs(task, ImageDataset(records, store, task.classes, plain), cfg.eval_batch_size)
        return vision_eval.to_predictions(records, probs, task.classes, split)

    def evaluate(self, ctx: Ctx, task: nn.Module, data: DataBundle, split: str) -> EvalReport:
        """Accuracy, per-class precision/recall/F1, macro/weighted averages, ``min_class_recall``,
        confusion matrix (PNG + Markdown), critical classes, per-slice accuracy and robustness.

        Also writes ``eval/predictions_<split>.csv`` (one row per item, top-k classes).
        """
        cfg = ctx.modality
        records = _labeled(data.records(split))
        if not records:
            raise FrameworkError(f"split {split!r} has no labeled images to evaluate")
        predictions = self.predict(ctx, task, records, split)
        out_dir = ctx.run_dir / "eval"
        report = cls_eval.evaluation_report(predictions, critical=cfg.critical_classes, run_dir=ctx.run_dir,
                                          out_dir=out_dir)
        csv_path = vision_eval.write_predictions_csv(predictions, out_dir / f"predictions_{split}.csv", cfg.top_k)
        report.artifacts.append(csv_path.relative_to(ctx.run_dir))
        if cfg.robustness:
            store = self._store(ctx, task.spec.size)
            report.robustness = vision_eval.robustness(task, records, store, cfg.robustness,
                                                       report.metrics["accuracy"],
                                                       batch_size=cfg.eval_batch_size, seed=ctx.seed)
            for name, row in report.robustness.items():
                report.metrics[f"robust/{name}/accuracy"] = row["accuracy"]
            worst = min(report.robustness.items(), key=lambda kv: kv[1]["accuracy"], default=None)
            if worst is not None:
                report.notes.append(
                    f"largest robustness drop: `{worst[0]}` accuracy {worst[1]['accuracy']:.2f} "
                    f"vs {report.metrics['accuracy']:.2f} clean"
                )
        return report

    # --- monitoring --------------------------------------------------------------------------

    def drift_features(self, ctx: Ctx, records: list[Record]) -> dict[str, list[Any]]:
        """Brightness, contrast, width, height and colour mode of each image file."""
        from framework.media.images import image_statistics

        return image_statistics(records)

    # --- export ------------------------------------------------------------------------------

    def export(self, ctx: Ctx, task: nn.Module, out_dir: Path) -> list[Path]:
        """Weights (safetensors) + config, ``vision.json`` for serving, and a ``torch.export`` program;
        both serve ``softmax(logits / ctx.temperature)`` when the run fitted a calibration temperature."""
        cfg = ctx.modality
        info = serving_info(task, ctx.model, cfg.resize, cfg.top_k, ctx.temperature)
        return export_model(task, info, out_dir, ctx.config_yaml, onnx=cfg.export_onnx)
