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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Mapping, TypeVar, overload

from framework.data.records import DataBundle, Record
from framework.evaluation.types import EvalReport, Predictions

if TYPE_CHECKING:
    import torch

    from framework.data.config import DataConfig
    from framework.evaluation.benchmarks import BenchmarkModel
    from framework.plugins import Plugins
    from framework.training import Engine

T = TypeVar("T")
D = TypeVar("D")
ModalityConfigT = TypeVar("ModalityConfigT")
ModelConfigT = TypeVar("ModelConfigT")


class StashKey(Generic[T]):
    """A typed key into :attr:`RunContext.stash`: a plugin's own per-run state.

    Create one per value at module level; the type parameter is what the value is::

        TOKENIZER = StashKey[PreTrainedTokenizerBase]("text.tokenizer")

    Keys compare by identity, so two plugins can never overwrite each other's values by picking
    the same name; the name is only shown in errors and ``repr``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StashKey({self.name!r})"


class Stash:
    """Per-run state a modality keeps between its own methods, under typed :class:`StashKey` keys.

    Lives as long as one :class:`RunContext`: ``load_data`` can put an image cache here for
    ``train`` and ``predict`` to reuse, ``train`` can leave what the audit's model checks read.
    The core never writes into it.
    """

    def __init__(self) -> None:
        self._values: dict[StashKey[Any], Any] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        try:
            return self._values[key]  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(f"{key.name!r} is not in the run's stash (set it before reading it)") from None

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...

    @overload
    def get(self, key: StashKey[T], default: D) -> T | D: ...

    def get(self, key: StashKey[T], default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when none was set."""
        return self._values.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value under ``key``, storing ``default`` there first when none was set."""
        return self._values.setdefault(key, default)  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __delitem__(self, key: StashKey[T]) -> None:
        del self._values[key]

    def __len__(self) -> int:
        return len(self._values)


@dataclass
class RunContext(Generic[ModalityConfigT, ModelConfigT]):
    """What every modality method receives about the run.

    Generic over the modality's own config types, so a plugin declares them once on its
    :class:`Modality` subclass and reads ``ctx.modality.<field>`` without casts.

    Attributes:
        run_dir: The run's output directory (Hydra's job dir); everything the run writes goes here.
        modality: The ``modality:`` config node, typed by the modality's ``sections["modality"]``.
        model: The ``model:`` config node, typed by ``sections["model"]`` when given.
        data: The ``data:`` config node (:class:`framework.config.DataConfig`).
        seed: The run's seed.
        plugins: The plugin facade, for modalities that call cross-cutting hooks themselves.
        config_yaml: The resolved run config as YAML text (stored in checkpoints and exports).
        allowed_targets: Packages whose classes a config's ``_target_`` may name, as given on the
            command line (``docs/security.md``); set by the core, read-only for plugins.
        classes: The class names of the loaded data (empty for modalities without classes); set
            by the core after ``load_data``, so ``predict`` on unlabeled records knows them too.
        engine: The engine that trained the task in this run, after the train stage (``None``
            before it, and in runs without it).
        stash: The modality's own per-run state under typed keys (:class:`Stash`); the core
            never writes into it.
        temperature: The calibration temperature the evaluate stage fitted on ``val``
            (``evaluation.calibration.temperature_scaling``), else ``None``; a classifier's
            ``export`` divides its logits by it so served probabilities are calibrated.
        meta_device: True while ``build_task`` runs inside ``torch.device("meta")`` (a modality
            with ``meta_init = True``, on the ranks of an FSDP2 run other than 0): build the
            architecture without reading any weights (transformers' ``from_config`` rather than
            ``from_pretrained``); the engine fills every rank's shards from rank 0's weights.
    """

    run_dir: Path
    modality: ModalityConfigT
    model: ModelConfigT
    data: "DataConfig"
    seed: int
    plugins: "Plugins"
    config_yaml: str = ""
    allowed_targets: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    engine: "Engine | None" = None
    stash: Stash = field(default_factory=Stash)
    temperature: float | None = None
    meta_device: bool = False
    _legacy_extras: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def extras(self) -> dict[str, Any]:
        """Deprecated: a string-keyed dict shared with the core. Use :attr:`stash` with a
        :class:`StashKey`, and :attr:`classes`, :attr:`engine`, :attr:`allowed_targets` for what
        the core provides (``docs/plugins.md``, "Migrating"). Kept working for one release."""
        warnings.warn("RunContext.extras is deprecated: keep per-run state in ctx.stash under a StashKey, and read "
                      "ctx.classes / ctx.engine / ctx.allowed_targets for what the core provides "
                      "(docs/plugins.md, Migrating)", DeprecationWarning, stacklevel=2)
        # What the core used to put there, as it did (setdefault: a value the plugin wrote wins).
        for key, value in (("classes", self.classes), ("allowed_targets", self.allowed_targets),
                           ("engine", self.engine)):
            if value:
                self._legacy_extras.setdefault(key, value)
        return self._legacy_extras

    def path(self, *parts: str) -> Path:
        """A path inside the run dir, with its parent directories created."""
        target = self.run_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


class Modality(abc.ABC, Generic[ModalityConfigT, ModelConfigT]):
    """Base class for a modality. Subclass it, set the class attributes, implement the methods.

    Parametrise it with the config dataclasses of your ``sections`` so every method's ``ctx`` is
    typed: ``class Vision(Modality[VisionConfig, VisionModelConfig])``.

    Class attributes:
        name: The name users select with ``+modality=NAME``; unique across installed plugins.
        description: One line shown by ``python -m framework --plugins``.
        label_type: What an annotation of this modality is, for annotation export/import:
            ``"class"`` (one class name), ``"text"`` (a transcript or caption),
            ``"preference"`` (``chosen``/``rejected``) or ``"none"``.
        sections: Structured-config dataclasses for the top-level config nodes this modality
            owns, typically ``{"modality": MyConfig, "model": MyModelConfig}``. The core validates
            those nodes against them, so a misspelled key is an error naming the valid keys.
        meta_init: ``build_task`` can build on the meta device when ``ctx.meta_device`` says so
            (it then reads no weights and computes nothing with them). Under
            ``trainer.distributed=fsdp`` the ranks other than 0 then build at no memory cost, and
            rank 0's weights fill their shards; without it every rank builds the whole task once
            before it is sharded.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    label_type: ClassVar[str] = "class"
    sections: ClassVar[Mapping[str, type]] = {}
    meta_init: ClassVar[bool] = False

    @abc.abstractmethod
    def load_data(self, ctx: RunContext[ModalityConfigT, ModelConfigT]) -> DataBundle:
        """Called once per run, before any stage; returns every split, read and validated.

        Read manifests with :mod:`framework.data` readers, resolve media paths, and quarantine
        (never drop) what cannot be used. Decoding happens later, in the datasets ``train`` builds.
        """

    @abc.abstractmethod
    def build_task(self, ctx: RunContext[ModalityConfigT, ModelConfigT], data: DataBundle) -> "torch.nn.Module":
        """Called once per run, after ``load_data``; returns the task: the model and its loss.

        The task's ``state_dict`` is what checkpoints hold, so everything trainable (and buffers
        such as EMA weights) lives in it. A frozen reference model (DPO) may live outside it.
        A task whose ``fsdp_units()`` returns modules (its transformer blocks) has each sharded
        on its own under FSDP2. With ``meta_init = True`` it may be called with
        ``ctx.meta_device`` set (see :attr:`RunContext.meta_device`).
        """

    @abc.abstractmethod
    def train(self, ctx: RunContext[ModalityConfigT, ModelConfigT], engine: "Engine", task: "torch.nn.Module",
              data: DataBundle) -> None:
        """Called by the train stage; the modality's training loop, written on the engine.

        The loop owns forward, loss and ``engine.backward``; the engine owns device, precision,
        accumulation, clipping, schedule, checkpoints, resume, signals, logging and DDP. Returns
        when the engine's step budget is spent or it stops early.
        """

    @abc.abstractmethod
    def predict(self, ctx: RunContext[ModalityConfigT, ModelConfigT], task: "torch.nn.Module", records: list[Record],
                split: str) -> Predictions:
        """Called by evaluation and pre-annotation; returns the task's outputs for ``records``.

        Must work for unlabeled records (targets ``None``), so that predictions can be exported as
        pre-annotations.
        """

    @abc.abstractmethod
    def evaluate(self, ctx: RunContext[ModalityConfigT, ModelConfigT], task: "torch.nn.Module", data: DataBundle,
                 split: str) -> EvalReport:
        """Called by the evaluate stage once per evaluated split; returns metrics and findings.

        Include per-class and per-slice figures where they mean something, and robustness results
        when the modality's config lists conditions. Plugin metrics are merged in by the core.
        """

    def drift_features(self, ctx: RunContext[ModalityConfigT, ModelConfigT],
                       records: list[Record]) -> dict[str, list[Any]]:
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

    def benchmark_model(self, ctx: RunContext[ModalityConfigT, ModelConfigT],
                        task: "torch.nn.Module") -> "BenchmarkModel | None":
        """Called by the evaluate and retention stages when ``evaluation.benchmarks`` names
        lm-evaluation-harness tasks; returns the task's causal LM and tokenizer as lm-eval scores
        them (:class:`framework.evaluation.benchmarks.BenchmarkModel`), in memory, as they are
        when called (trained or starting weights), plus any task folders the plugin ships.

        The default returns ``None``: the modality has no language model to benchmark, and a run
        that sets ``evaluation.benchmarks`` stops with an error saying so.
        """
        return None

    def export(self, ctx: RunContext[ModalityConfigT, ModelConfigT], task: "torch.nn.Module",
               out_dir: Path) -> list[Path]:
        """Called by the export stage; writes a deployable artifact into ``out_dir``.

        Returns the written files. The default writes the task's weights as safetensors with the
        resolved config beside them; override it to add TorchScript, ONNX or a processor.
        """
        from framework.training.checkpoint import export_weights

        return export_weights(task, out_dir, ctx.config_yaml)
