"""Exporting a trained classifier, and loading it back for prediction.

An export directory holds:

* ``model.safetensors`` and ``config.yaml``: the task's weights and the run's config (written by
  the core's :func:`framework.training.checkpoint.export_weights`);
* ``vision.json``: what serving needs besides weights: the ``model:`` node, class names, input
  size, mean/std, resize policy and the calibration temperature (:class:`ServingInfo`);
* ``model.onnx`` (``modality.export_onnx=true``): the same graph as ONNX (input ``images``, output
  ``probabilities``, calibrated like ``model.pt2``), checked against onnxruntime to :data:`framework.serving.ONNX_TOLERANCE`;
* ``model.pt2``: a ``torch.export`` program taking ``(B, 3, H, W)`` uint8 RGB at the input size
  (any batch size) and returning ``(B, C)`` probabilities (``softmax(logits / temperature)``,
  calibrated when the run fitted a temperature), for serving without this package:
  ``torch.export.load("model.pt2").module()(images)``. TorchScript is deprecated in torch 2.11,
  hence ``torch.export``; skipped with a logged note when an architecture cannot be captured.

The same ``vision.json`` is written into the run dir when the task is built, so any checkpoint of
the run (``run_dir/checkpoints/step_*``) can be loaded with :func:`load_task` too.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from framework.errors import FrameworkError
from framework.serving import ServingFile, find_serving_file
from plugins.vision.config import VisionModelConfig
from framework.media.images import ImageSpec
from plugins.vision.model import build_model
from plugins.vision.task import ImageClassificationTask

log = logging.getLogger(__name__)

SERVING_INFO = "vision.json"
WEIGHTS = "model.safetensors"
PROGRAM = "model.pt2"
ONNX_FILE = "model.onnx"


@dataclass
class ServingInfo(ServingFile):
    """Everything besides weights needed to rebuild and feed the classifier."""

    model: dict[str, Any]
    classes: list[str]
    input: dict[str, Any]
    resize: str = "stretch"
    top_k: int = 3
    temperature: float = 1.0  # logits are divided by it (evaluation.calibration.temperature_scaling)



def serving_info(task: ImageClassificationTask, model_cfg: Any, resize: str, top_k: int,
                 temperature: float | None = None) -> ServingInfo:
    """The :class:`ServingInfo` of a built task (``temperature``: the calibration temperature, if fitted)."""
    raw = dataclasses.asdict(model_cfg) if dataclasses.is_dataclass(model_cfg) else dict(model_cfg)
    return ServingInfo(model=raw, classes=list(task.classes), input=task.spec.to_dict(), resize=resize, top_k=top_k,
                       temperature=1.0 if temperature is None else float(temperature))


class _Probabilities(nn.Module):
    """uint8 images in, probabilities out: the exported serving graph."""

    def __init__(self, task: ImageClassificationTask, temperature: float = 1.0) -> None:
        super().__init__()
        self.task = task
        self.temperature = temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.task.logits(images).float() / self.temperature, dim=-1)  # (B, C)


def export_program(task: ImageClassificationTask, path: Path, temperature: float = 1.0) -> Path | None:
    """Export ``task`` on the CPU with ``torch.export`` (any batch size) into ``path``; its
    probabilities are ``softmax(logits / temperature)``.

    Returns ``None``, with a logged note, for architectures ``torch.export`` cannot capture.
    """
    cpu_task = copy.deepcopy(task).cpu().eval()
    height, width = task.spec.size
    example = torch.zeros(2, 3, height, width, dtype=torch.uint8)  # (B, 3, H, W)
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.export.export(_Probabilities(cpu_task, temperature), (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
    except Exception as exc:  # capture support differs between architectures
        log.warning("torch.export of %s skipped: %s: %s", type(task.model).__name__, type(exc).__name__, exc)
        return None
    return path


def export_onnx_model(task: ImageClassificationTask, path: Path, temperature: float = 1.0) -> Path:
    """``task`` as ONNX: ``(B, 3, H, W)`` uint8 RGB in, ``(B, C)`` probabilities
    (``softmax(logits / temperature)``) out, checked against onnxruntime on another batch size."""
    from framework import export_onnx

    cpu_task = _Probabilities(copy.deepcopy(task).cpu().eval(), temperature)
    height, width = task.spec.size
    generator = torch.Generator().manual_seed(0)
    example = torch.randint(0, 256, (2, 3, height, width), dtype=torch.uint8, generator=generator)
    check = torch.randint(0, 256, (3, 3, height, width), dtype=torch.uint8, generator=generator)
    with torch.no_grad():
        export_onnx(cpu_task, (example,), (check,), path, input_names=["images"], output_name="probabilities")
    return path


def export_model(task: ImageClassificationTask, info: ServingInfo, out_dir: Path, config_yaml: str,
                 program: bool = True, onnx: bool = False) -> list[Path]:
    """Write the export directory (see the module docstring); returns the written files."""
    from framework.training.checkpoint import export_weights

    out_dir = Path(out_dir)
    written = export_weights(task, out_dir, config_yaml)
    written.append(info.write(out_dir / SERVING_INFO))
    if program:
        exported = export_program(task, out_dir / PROGRAM, info.temperature)
        if exported is not None:
            written.append(exported)
    if onnx:
        written.append(export_onnx_model(task, out_dir / ONNX_FILE, info.temperature))
    return written


def find_serving_info(source: Path) -> Path:
    """``vision.json`` for an export directory, or for a checkpoint directory of a run."""
    return find_serving_file(source, SERVING_INFO, "vision")


def load_task(source: Path, device: str | torch.device = "cpu") -> ImageClassificationTask:
    """Rebuild a trained task from an export or checkpoint directory, weights loaded, in eval mode.

    Never downloads: the architecture is rebuilt with ``pretrained=false``.
    """
    from framework.training.checkpoint import load_model_weights

    source = Path(source)
    info = ServingInfo.read(find_serving_info(source))
    model_cfg = VisionModelConfig(**{**info.model, "pretrained": False, "checkpoint_path": None})
    task = ImageClassificationTask(build_model(model_cfg, len(info.classes)), info.classes,
                                   ImageSpec.from_dict(info.input))
    if not (source / WEIGHTS).is_file():
        raise FrameworkError(f"{source} has no {WEIGHTS}")
    load_model_weights(task, source)
    task.temperature = info.temperature
    return task.to(device).eval()
