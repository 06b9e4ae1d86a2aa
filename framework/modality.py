"""What a modality is: the object a plugin registers through ``framework_modalities``.

The core drives every run through these methods and knows no modality by name. A modality owns
its data decoding, its task (model + loss), its training loop (written on the core
:class:`~framework.training.Engine`), its evaluation and its export. Everything else (audit gates,
agreement, checkpoints, resume, signals, tracking, reports, sweeps, distributed) comes from the core.

The call order in one run, for the default ``stages: [audit, train, evaluate, export]``::

    data = modality.load_data(ctx)                  # once
    (audit gates run on `data`)
    task = modality.build_task(ctx, data)           # once
    modality.train(ctx, engine, task, data)         # the training loop
    modality.evaluate(ctx, task, data, split)       # per evaluated split
    modality.export(ctx, task, out_dir)             # once

The monitor (``python -m framework.monitoring RUN_DIR MANIFEST``) later calls ``load_data``,
``build_task``, ``predict`` and ``drift_features`` on a trained run.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from framework.data.records import DataBundle, Record
from framework.evaluation.types import EvalReport, Predictions

if TYPE_CHECKING:
    import torch

    from framework.plugins import Plugins
    from framework.training import Engine


@dataclass
class RunContext:
    """What every modality method receives about the run.

    Attributes:
        run_dir: The run's output directory (Hydra's job dir); everything the run writes goes here.
        modality: The ``modality:`` config node, typed by the modality's ``sections["modality"]``.
        model: The ``model:`` config node, typed by ``sections["model"]`` when given.
        data: The ``data:`` config node (:class:`framework.config.DataConfig`).
        seed: The run's seed.
        plugins: The plugin facade, for modalities that call cross-cutting hooks themselves.
        config_yaml: The resolved run config as YAML text (stored in checkpoints and exports).
        extras: Free room shared between a modality's own methods during one run.
    """

    run_dir: Path
    modality: Any
    model: Any
    data: Any
    seed: int
    plugins: "Plugins"
    config_yaml: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def path(self, *parts: str) -> Path:
        """A path inside the run dir, with its parent directories created."""
        target = self.run_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


class Modality(abc.ABC):
    """Base class for a modality. Subclass it, set the class attributes, implement the methods.

    Class attributes:
        name: The name users select with ``+modality=NAME``; unique across installed plugins.
        description: One line shown by ``python -m framework --plugins``.
        label_type: What an annotation of this modality is, for annotation export/import:
            ``"class"`` (one class name), ``"text"`` (a transcript or caption),
            ``"preference"`` (``chosen``/``rejected``) or ``"none"``.
        sections: Structured-config dataclasses for the top-level config nodes this modality
            owns, typically ``{"modality": MyConfig, "model": MyModelConfig}``. The core validates
            those nodes against them, so a misspelled key is an error naming the valid keys.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    label_type: ClassVar[str] = "class"
    sections: ClassVar[Mapping[str, type]] = {}

    @abc.abstractmethod
    def load_data(self, ctx: RunContext) -> DataBundle:
        """Called once per run, before any stage; returns every split, read and validated.

        Read manifests with :mod:`framework.data` readers, resolve media paths, and quarantine
        (never drop) what cannot be used. Decoding happens later, in the datasets ``train`` builds.
        """

    @abc.abstractmethod
    def build_task(self, ctx: RunContext, data: DataBundle) -> "torch.nn.Module":
        """Called once per run, after ``load_data``; returns the task: the model and its loss.

        The task's ``state_dict`` is what checkpoints hold, so everything trainable (and buffers
        such as EMA weights) lives in it. A frozen reference model (DPO) may live outside it.
        """

    @abc.abstractmethod
    def train(self, ctx: RunContext, engine: "Engine", task: "torch.nn.Module", data: DataBundle) -> None:
        """Called by the train stage; the modality's training loop, written on the engine.

        The loop owns forward, loss and ``engine.backward``; the engine owns device, precision,
        accumulation, clipping, schedule, checkpoints, resume, signals, logging and DDP. Returns
        when the engine's step budget is spent or it stops early.
        """

    @abc.abstractmethod
    def predict(self, ctx: RunContext, task: "torch.nn.Module", records: list[Record], split: str) -> Predictions:
        """Called by evaluation and pre-annotation; returns the task's outputs for ``records``.

        Must work for unlabeled records (targets ``None``), so that predictions can be exported as
        pre-annotations.
        """

    @abc.abstractmethod
    def evaluate(self, ctx: RunContext, task: "torch.nn.Module", data: DataBundle, split: str) -> EvalReport:
        """Called by the evaluate stage once per evaluated split; returns metrics and findings.

        Include per-class and per-slice figures where they mean something, and robustness results
        when the modality's config lists conditions. Plugin metrics are merged in by the core.
        """

    def drift_features(self, ctx: RunContext, records: list[Record]) -> dict[str, list[Any]]:
        """Called by the monitor (``python -m framework.monitoring``) on the training reference and
        on each new batch; returns the per-item input statistics drift is measured on.

        Return feature name -> one value per record, in ``records`` order: numbers (image
        brightness, audio duration, text length) are compared as distributions (PSI and a KS
        test), strings (colour mode, sample rate, language) as category mixes (PSI and a
        chi-square test). An item whose value cannot be measured gets ``None`` and is left out of
        that feature. The default returns ``{}``: only the model's own signals (confidence,
        predicted-class mix, score and embedding distributions) are then monitored.
        """
        return {}

    def export(self, ctx: RunContext, task: "torch.nn.Module", out_dir: Path) -> list[Path]:
        """Called by the export stage; writes a deployable artifact into ``out_dir``.

        Returns the written files. The default writes the task's weights as safetensors with the
        resolved config beside them; override it to add TorchScript, ONNX or a processor.
        """
        from framework.training.checkpoint import export_weights

        return export_weights(task, out_dir, ctx.config_yaml)
