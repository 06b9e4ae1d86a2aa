"""Exporting a trained dual encoder, and loading it back for retrieval.

An export directory holds:

* ``model.safetensors`` and ``config.yaml``: the whole task's weights and the run's config
  (:func:`framework.training.checkpoint.export_weights`);
* ``alignment.json``: what rebuilding needs besides weights: the ``model:`` node, the image
  input size, mean/std and resize policy, the caption length (:class:`ServingInfo`);
* ``tokenizer/``: the text tower's tokenizer (``save_pretrained``);
* ``text_tower/``: the text encoder in transformers format (LoRA adapters merged), loadable with
  ``AutoModel.from_pretrained``; ``image_tower/``: the timm image encoder (``config.json`` +
  ``model.safetensors``, ``timm.create_model("local-dir:...")``); ``projections.safetensors``:
  both projection heads and the logit scale. With ``model.clip`` set, ``clip/`` holds the whole
  ``CLIPModel`` and its image processor instead of the two tower folders;
* with ``modality.export_onnx=true``: ``image_encoder.onnx`` (``images``, uint8) and
  ``text_encoder.onnx`` (``input_ids`` and ``attention_mask``, int64, any batch and length),
  each giving L2-normalised ``embeddings`` in the retrieval space, checked against onnxruntime to
  :data:`framework.serving.ONNX_TOLERANCE` (:func:`export_onnx_towers`).

:func:`load_encoder` rebuilds the task from an export or from a checkpoint directory of a run
(``alignment.json`` is written into the run dir when the task is built), never downloading;
its ``encode_images`` / ``encode_texts`` return L2-normalised embeddings for retrieval.
:func:`load_serving` also returns the :class:`ServingInfo`, whose ``resize`` is the policy to
pass to ``encode_images``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from framework.errors import FrameworkError
from framework.media import timm_kwargs
from framework.serving import ServingFile, find_serving_file

SERVING_INFO = "alignment.json"
WEIGHTS = "model.safetensors"


@dataclass
class ServingInfo(ServingFile):
    """Everything besides weights needed to rebuild and feed the dual encoder."""

    model: dict[str, Any]
    image: dict[str, Any]
    resize: str = "stretch"
    max_length: int = 32



def serving_info(task: Any, model_cfg: Any, resize: str) -> ServingInfo:
    """The :class:`ServingInfo` of a built task."""
    raw = dataclasses.asdict(model_cfg) if dataclasses.is_dataclass(model_cfg) else dict(model_cfg)
    return ServingInfo(model=raw, image=task.spec.to_dict(), resize=resize, max_length=task.max_length)


def _text_model(task: Any) -> Any:
    model = copy.deepcopy(task.text_encoder.model).cpu()
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def export_towers(task: Any, info: ServingInfo, out_dir: Path) -> list[Path]:
    """The tower folders, the tokenizer and the projection heads (see the module docstring)."""
    from safetensors.torch import save_file

    written = []
    task.tokenizer.save_pretrained(str(out_dir / "tokenizer"))
    written.append(out_dir / "tokenizer")
    if info.model.get("clip"):
        from transformers import CLIPImageProcessor

        clip_dir = out_dir / "clip"
        _clip_model(task, info).save_pretrained(str(clip_dir))
        CLIPImageProcessor.from_pretrained(info.model["clip"]).save_pretrained(str(clip_dir))
        return written + [clip_dir]
    import timm.models

    _text_model(task).save_pretrained(str(out_dir / "text_tower"))
    image_dir = out_dir / "image_tower"
    timm.models.save_for_hf(copy.deepcopy(task.image_encoder.model).cpu(), str(image_dir),
                            model_args=timm_kwargs(info.model["image"]))
    heads = {f"image_proj.{k}": v for k, v in task.image_proj.state_dict().items()}
    heads |= {f"text_proj.{k}": v for k, v in task.text_proj.state_dict().items()}
    heads["logit_scale"] = task.logit_scale.detach()
    save_file({k: v.detach().cpu().contiguous() for k, v in heads.items()}, str(out_dir / "projections.safetensors"))
    return written + [out_dir / "text_tower", image_dir, out_dir / "projections.safetensors"]


class _ImageEmbeddings(nn.Module):
    def __init__(self, task: Any) -> None:
        super().__init__()
        self.task = task

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.task.image_features(images)  # (B, 3, H, W) uint8 -> (B, D)


class _TextEmbeddings(nn.Module):
    def __init__(self, task: Any) -> None:
        super().__init__()
        self.task = task

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.task.text_features(input_ids, attention_mask)  # (B, L) int64 twice -> (B, D)


#: Captions of varied lengths the text tower's ONNX export is traced and checked on (any
#: tokenizer: the export is checked on how they tokenize, padded to the longest and to max_length).
CHECK_CAPTIONS = ("a red circle", "a large blue square in the top left corner of the picture", "green",
                  "two small yellow triangles", "a purple star at the bottom", "an orange shape")


def _text_batches(task: Any) -> tuple[tuple[torch.Tensor, ...], list[tuple[torch.Tensor, ...]]]:
    """The text export's example (two captions, padded to the longer) and its checks: other batch
    sizes and lengths, padded to the longest caption and (as training does) to ``max_length``."""
    def encode(texts: tuple[str, ...], padding: str) -> tuple[torch.Tensor, ...]:
        enc = task.tokenizer(list(texts), padding=padding, truncation=True, max_length=task.max_length,
                             return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    example = encode(CHECK_CAPTIONS[:2], "longest")
    checks = [encode(CHECK_CAPTIONS[2:5], "longest"), encode(CHECK_CAPTIONS[2:3], "longest"),
              encode(CHECK_CAPTIONS, "max_length")]
    return example, checks


def export_onnx_towers(task: Any, out_dir: Path) -> list[Path]:
    """``image_encoder.onnx``: ``images`` (B, 3, H, W) uint8 -> ``embeddings`` (B, D), and
    ``text_encoder.onnx``: ``input_ids`` and ``attention_mask`` (B, L) int64 -> ``embeddings``
    (B, D), both L2-normalised into the retrieval space, with dynamic batch (and, for text,
    sequence) axes. Each is checked against onnxruntime to :data:`framework.serving.ONNX_TOLERANCE`:
    the image tower on another batch size, the text tower on padded batches of other sizes and
    lengths, so a graph that ignored the attention mask would fail the check."""
    from framework import export_onnx

    cpu = copy.deepcopy(task).cpu().eval()
    height, width = task.spec.size
    generator = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=generator) for n in (2, 3)]
    image_path, text_path = Path(out_dir) / "image_encoder.onnx", Path(out_dir) / "text_encoder.onnx"
    example, checks = _text_batches(cpu)
    text_axes = {"input_ids": {1: "sequence"}, "attention_mask": {1: "sequence"}}
    with torch.no_grad():
        export_onnx(_ImageEmbeddings(cpu), (images[0],), (images[1],), image_path, input_names=["images"],
                    output_name="embeddings")
        export_onnx(_TextEmbeddings(cpu), example, checks, text_path, input_names=["input_ids", "attention_mask"],
                    output_name="embeddings", dynamic=text_axes)
    return [image_path, text_path]


def _clip_model(task: Any, info: ServingInfo) -> Any:
    """A ``CLIPModel`` holding the task's trained towers, projections and temperature."""
    from transformers import CLIPConfig, CLIPModel

    clip = CLIPModel(CLIPConfig.from_pretrained(info.model["clip"]))
    clip.vision_model = copy.deepcopy(task.image_encoder.model).cpu()
    clip.text_model = _text_model(task)
    clip.visual_projection = copy.deepcopy(task.image_proj).cpu()
    clip.text_projection = copy.deepcopy(task.text_proj).cpu()
    clip.logit_scale = torch.nn.Parameter(task.logit_scale.detach().cpu().clone())
    return clip


def export_model(task: Any, info: ServingInfo, out_dir: Path, config_yaml: str, onnx: bool = False) -> list[Path]:
    """Write the export directory (with the ONNX towers when ``onnx``); returns the written files and folders."""
    from framework.training.checkpoint import export_weights

    out_dir = Path(out_dir)
    written = export_weights(task, out_dir, config_yaml)
    written.append(info.write(out_dir / SERVING_INFO))
    written += export_towers(task, info, out_dir)
    return written + export_onnx_towers(task, out_dir) if onnx else written


def find_serving_info(source: Path) -> Path:
    """``alignment.json`` for an export directory, or for a checkpoint directory of a run."""
    return find_serving_file(source, SERVING_INFO, "alignment")


def load_encoder(source: Path, device: str | torch.device = "cpu") -> Any:
    """Rebuild a trained :class:`~plugins.alignment.task.AlignmentTask` from an export or checkpoint
    directory, weights loaded, in eval mode. Never downloads: towers are rebuilt from their configs
    (an export's own tokenizer is used when present). To resize images as the run did, use
    :func:`load_serving`, which also returns the ``resize`` policy for ``encode_images``."""
    return load_serving(source, device)[0]


def load_serving(source: Path, device: str | torch.device = "cpu") -> tuple[Any, ServingInfo]:
    """The trained task of :func:`load_encoder` and the :class:`ServingInfo` it was exported with:
    pass ``info.resize`` to ``task.encode_images`` so images reach the tower resized as in training."""
    from framework.training.checkpoint import load_model_weights
    from plugins.alignment.config import AlignmentModelConfig
    from plugins.alignment.task import task_from_config

    source = Path(source)
    info = ServingInfo.read(find_serving_info(source))
    if not (source / WEIGHTS).is_file():
        raise FrameworkError(f"{source} has no {WEIGHTS}")
    raw = copy.deepcopy(info.model)
    if (source / "tokenizer").is_dir():
        raw["text"]["tokenizer"] = str(source / "tokenizer")
    if raw.get("clip") and (source / "clip").is_dir():
        raw["clip"] = str(source / "clip")
    if raw["text"].get("name") and (source / "text_tower").is_dir():
        raw["text"]["name"] = str(source / "text_tower")
    cfg = _model_config(AlignmentModelConfig, raw)
    task = task_from_config(cfg, offline=True)
    load_model_weights(task, source)
    return task.to(device).eval(), info


def _model_config(schema: type, raw: dict[str, Any]) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), raw))
