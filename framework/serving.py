"""The serving file a modality writes beside its weights: what rebuilds and feeds the model.

A plugin's export holds weights plus one small JSON file (``vision.json``, ``speech.json``...)
with everything else a loader needs: the model's config, class names, input size, languages. The
same file sits in the run directory, beside ``checkpoints/``, so any checkpoint of a run can serve
predictions too. :class:`ServingFile` gives a plugin's dataclass its ``write`` and ``read``;
:func:`find_serving_file` finds it for an export directory or a checkpoint directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from framework.atomic import atomic_write_text
from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.stage import Run

T = TypeVar("T", bound="ServingFile")

log = logging.getLogger(__name__)


class ServingFile:
    """Mixin for a ``@dataclass`` of JSON-ready fields: :meth:`write` and :meth:`read`."""

    def write(self, path: Path) -> Path:
        """Write as UTF-8 JSON (atomically; non-ASCII text kept as is); returns ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fields: Any = dataclasses.asdict(self)  # type: ignore[call-overload]
        atomic_write_text(path, json.dumps(fields, indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def read(cls: type[T], path: Path) -> T:
        """Read what :meth:`write` wrote."""
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def find_serving_file(source: Path, name: str, modality: str) -> Path:
    """``name`` for an export directory, or for a checkpoint directory of a run (``run/checkpoints/step_*``).

    Raises:
        FrameworkError: when neither place has one, saying what to give instead.
    """
    source = Path(source)
    for candidate in (source / name, source.parent.parent / name):
        if candidate.is_file():
            return candidate
    raise FrameworkError(
        f"{source} has no {name}: give an export directory (run_dir/export) or a checkpoint "
        f"directory (run_dir/checkpoints/step_...) of a run of the {modality} modality"
    )


class Export:
    """The export stage (``stages=[..., export]``, main process): ``modality.export`` into a
    temporary directory, published whole as ``run_dir/export/``, so it is never half-written.
    When the evaluate stage fitted a calibration temperature, ``calibration.json`` beside the
    plugin's files records it (the plugin's own export applies it; see ``RunContext.temperature``)."""

    name = "export"

    def applies(self, run: "Run") -> bool:
        return run.selected("export") and run.is_main

    def __call__(self, run: "Run") -> None:
        from framework.atomic import replace_dir

        final = run.run_dir / "export"
        tmp = run.run_dir / f".tmp-export-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            written = run.call("export", run.require(run.task, "task"), tmp)
            if run.ctx.temperature is not None:
                written.append(write_calibration(tmp, run.ctx.temperature))
            replace_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("exported %d file(s) to %s", len(written), final)


def write_calibration(export_dir: Path, temperature: float) -> Path:
    """``calibration.json`` in an export: ``{"temperature": T, "fitted_on": "val", ...}``."""
    from framework.atomic import atomic_write_json
    from framework.evaluation.calibration import CALIBRATION_JSON

    return atomic_write_json(Path(export_dir) / CALIBRATION_JSON, {
        "temperature": float(temperature), "fitted_on": "val",
        "meaning": "served probabilities are softmax(logits / temperature)"})


#: The largest absolute difference an ONNX export may show against the PyTorch module on the same
#: inputs (float32 on the CPU; the exporter fuses and reorders operations, so bit equality is not
#: expected).
ONNX_TOLERANCE = 1e-4


def export_onnx(module: Any, example: tuple[Any, ...], check: tuple[Any, ...] | list[tuple[Any, ...]], path: Path,
                *, input_names: list[str], output_name: str, tolerance: float = ONNX_TOLERANCE,
                dynamic: dict[str, dict[int, str]] | None = None) -> float:
    """Export ``module`` (CPU) to ONNX with a dynamic batch axis and check it in onnxruntime.

    ``module`` is put in eval mode first and stays there: ``torch.onnx.export`` restores the mode
    it found on the module it is given into every submodule, so a wrapper left in training mode
    would switch dropout back on in the towers it wraps.

    Args:
        module: Maps the tensors of ``example`` to one tensor.
        example: Inputs the export traces (batch first).
        check: Inputs of another batch size (and, for ``dynamic`` axes, other lengths) both
            runtimes score, to prove those axes dynamic; one tuple of inputs or a list of them.
        path: The ``.onnx`` file to write.
        input_names: One name per input (what a deployer feeds).
        output_name: The output's name.
        tolerance: The largest absolute difference accepted (:data:`ONNX_TOLERANCE`).
        dynamic: Further dynamic axes besides the batch, by input name (``{"input_ids": {1: "sequence"}}``).

    Returns:
        The largest absolute difference measured over ``check``.

    Raises:
        FrameworkError: ``onnx``/``onnxruntime`` missing (the ``real`` extra), or the export
            differs from the module by more than ``tolerance``.
    """
    import torch

    try:
        import onnx  # noqa: F401 - the exporter writes through it
        import onnxruntime
    except ImportError as exc:
        raise FrameworkError(f"ONNX export needs onnx and onnxruntime ({exc.name} is missing): "
                             "pip install 'onnx==1.23.2' 'onnxruntime==1.32.0' (the project's real extra)") from None
    axes = {name: {0: "batch", **(dynamic or {}).get(name, {})} for name in [*input_names, output_name]}
    path = Path(path)
    module.eval()
    torch.onnx.export(module, example, str(path), input_names=input_names, output_names=[output_name],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for inputs in check if isinstance(check, list) else [check]:
        ours = module(*inputs).detach().float().numpy()
        theirs = session.run(None, {name: tensor.numpy() for name, tensor in zip(input_names, inputs)})[0]
        worst = max(worst, float(abs(ours - theirs).max()))
    if worst > tolerance:
        raise FrameworkError(f"the ONNX export {path} differs from the model by {worst:.2g} (more than {tolerance:g}) "
                             "under onnxruntime; export without ONNX or report the architecture")
    log.info("ONNX export %s: within %.2g of the model under onnxruntime (tolerance %g)", path.name, worst, tolerance)
    return worst
