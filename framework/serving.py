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
