"""Exporting a trained recogniser, and loading it back for transcription.

An export directory holds:

* ``model.pt``: a whisper checkpoint (``{"dims", "model_state_dict"}``, LoRA adapters merged) that
  ``whisper.load_model("model.pt")`` loads, for use with openai-whisper alone;
* ``model.safetensors`` and ``config.yaml``: the task's weights and the run's config (the core's
  :func:`framework.training.checkpoint.export_weights`);
* ``speech.json``: what transcription needs besides weights (:class:`ServingInfo`): the model's
  dimensions, the ``model:`` node, the default language, normalisation and decoding settings.
* ``transformers/`` and ``ctranslate2/`` when ``modality.export_formats`` names them: the same
  weights for ``transformers.pipeline`` and for faster-whisper (:mod:`plugins.speech.runtimes`).

The same ``speech.json`` is written into the run dir when the task is built, so any checkpoint of
the run (``run_dir/checkpoints/step_*``) can be loaded with :func:`load_task` too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from framework.errors import FrameworkError
from framework.serving import ServingFile, find_serving_file
from plugins.speech.task import SpeechRecognitionTask

SERVING_INFO = "speech.json"
WHISPER_CHECKPOINT = "model.pt"
WEIGHTS = "model.safetensors"


def _plain(node: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(node):
        return dataclasses.asdict(node)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if not isinstance(node, dict) else dict(node)  # type: ignore[return-value]


@dataclass
class ServingInfo(ServingFile):
    """Everything besides weights needed to rebuild the recogniser and feed it."""

    dims: dict[str, int]
    model: dict[str, Any]
    language: str
    audio: dict[str, Any]
    normalizer: dict[str, Any]
    beam_size: int = 0
    sample_len: int | None = None
    timestamps: bool = False
    fallback: dict[str, Any] | None = None  # modality.fallback; None (older exports): no fallback



def serving_info(task: SpeechRecognitionTask, model_cfg: Any, modality_cfg: Any) -> ServingInfo:
    """The :class:`ServingInfo` of a built task."""
    return ServingInfo(dims=dataclasses.asdict(task.dims), model=_plain(model_cfg), language=modality_cfg.language,
                       audio=_plain(modality_cfg.audio), normalizer=_plain(modality_cfg.normalizer),
                       beam_size=int(modality_cfg.beam_size), sample_len=modality_cfg.sample_len,
                       timestamps=bool(modality_cfg.timestamps), fallback=_plain(modality_cfg.fallback))


def save_whisper_checkpoint(task: SpeechRecognitionTask, path: Path) -> Path:
    """``{"dims", "model_state_dict"}`` of the plain Whisper model, as ``whisper.load_model`` reads it."""
    model = task.whisper()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"dims": dataclasses.asdict(model.dims), "model_state_dict": state}, str(path))
    return path


def export_model(task: SpeechRecognitionTask, info: ServingInfo, out_dir: Path, config_yaml: str,
                 formats: Sequence[str] = (), quantization: str = "float32") -> list[Path]:
    """Write the export directory (see the module docstring), plus ``transformers/`` and
    ``ctranslate2/`` for the runtimes ``formats`` names; returns the written files and directories."""
    import tempfile

    from framework.training.checkpoint import export_weights
    from plugins.speech.runtimes import EXPORT_FORMATS, export_ctranslate2, export_transformers

    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise FrameworkError(f"modality.export_formats: unknown {', '.join(unknown)}; choose from "
                             f"{', '.join(EXPORT_FORMATS)}")
    out_dir = Path(out_dir)
    written = export_weights(task, out_dir, config_yaml)
    written.append(save_whisper_checkpoint(task, out_dir / WHISPER_CHECKPOINT))
    written.append(info.write(out_dir / SERVING_INFO))
    if formats:
        with tempfile.TemporaryDirectory() as tmp:
            keep = "transformers" in formats
            hf_dir = export_transformers(task.whisper(), out_dir / "transformers" if keep else Path(tmp) / "hf")
            if keep:
                written.append(hf_dir)
            if "ctranslate2" in formats:
                written.append(export_ctranslate2(hf_dir, out_dir / "ctranslate2", quantization))
    return written


def find_serving_info(source: Path) -> Path:
    """``speech.json`` for an export directory, or for a checkpoint directory of a run."""
    return find_serving_file(source, SERVING_INFO, "speech")


def read_serving_info(path: Path) -> ServingInfo:
    """Read and check a ``speech.json``; called by :func:`load_task` before anything is built.

    Raises:
        FrameworkError: one line naming the file when it is not JSON or not a speech export's info.
    """
    import json

    try:
        info = ServingInfo.read(path)
        if not isinstance(info.dims, dict) or not isinstance(info.model, dict) or not isinstance(info.audio, dict):
            raise TypeError("dims, model and audio must be JSON objects")
        from whisper.model import ModelDimensions

        ModelDimensions(**info.dims)
        return info
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise FrameworkError(f"{path} is not a valid {SERVING_INFO} ({type(exc).__name__}: {exc}); re-export the "
                             "model, or point at a speech run's export or checkpoint directory") from None


def load_task(source: Path, device: str | torch.device = "cpu") -> tuple[SpeechRecognitionTask, ServingInfo]:
    """Rebuild a trained task from an export or checkpoint directory, in eval mode. Never downloads.

    An export directory is read through ``whisper.load_model(model.pt)``; a checkpoint directory
    is rebuilt from the run's ``speech.json`` (dims, fine-tuning mode) and its safetensors weights.
    """
    import whisper
    from whisper.model import ModelDimensions

    from framework.training.checkpoint import load_model_weights
    from plugins.speech.config import LoraConfig
    from plugins.speech.model import configure_training

    source = Path(source)
    info = read_serving_info(find_serving_info(source))
    if (source / WHISPER_CHECKPOINT).is_file():
        model = whisper.load_model(str(source / WHISPER_CHECKPOINT), device="cpu")
        task = SpeechRecognitionTask(model, model.dims, timestamps=info.timestamps)
        return task.to(device).eval(), info
    if not (source / WEIGHTS).is_file():
        raise FrameworkError(f"{source} has neither {WHISPER_CHECKPOINT} nor {WEIGHTS}")
    dims = ModelDimensions(**info.dims)
    lora = LoraConfig(**(info.model.get("lora") or {}))
    module = configure_training(whisper.model.Whisper(dims), str(info.model.get("finetune", "full")), 0, lora)
    task = SpeechRecognitionTask(module, dims, timestamps=info.timestamps)
    load_model_weights(task, source)
    return task.to(device).eval(), info
