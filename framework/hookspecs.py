"""The plugin contract: every hook a plugin may implement.

Plugins are found through the ``framework.plugins`` entry-point group; the built-in modalities in
``plugins/`` register through that same group. A plugin is a module (or an object) whose functions
are marked with :data:`framework.hookimpl` and named like the specs below. Implement only the hooks
you need; a misspelled hook name or an argument that is not in the spec is an error at start-up.

Hooks are called with keyword arguments, so an implementation may accept fewer arguments than
the spec lists. Specs only ever grow by new arguments, never by changing existing ones.

Calling conventions, chosen per hook:

* *contribution* hooks return a list; the core concatenates the lists of every plugin;
* *registration* hooks receive a typed registry and add to it (tox's ``tox_register_tox_env``);
* *event* hooks return nothing; every implementation is called, in registration order
  (built-ins last), and an exception in one is reported and does not stop the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import pluggy

from framework.run_info import RunInfo

if TYPE_CHECKING:
    from framework.data.checks import QualityCheck
    from framework.data.readers.registry import ReaderRegistry
    from framework.evaluation.types import Metric
    from framework.modality import Modality

PROJECT = "framework"
ENTRY_POINT_GROUP = "framework.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration ---------------------------------------------------------------------------


@hookspec
def framework_modalities() -> list["Modality"]:
    """Return the modalities this plugin provides.

    Called once when the plugin manager is built, and again whenever the list of installed
    modalities is needed (``--plugins``, an unknown ``+modality``). Return a list of
    :class:`framework.modality.Modality` instances; an empty list is fine. Two plugins returning
    a modality of the same ``name`` is an error that names both plugins.
    """


@hookspec
def framework_config_search_path() -> list[str]:
    """Return Hydra search-path entries for this plugin's own config groups.

    Called once per ``python -m framework`` invocation, before Hydra composes the config. Return
    entries such as ``"pkg://my_package.conf"``; the folder holds ``modality/NAME.yaml`` and any
    groups of your own (``model/``, ``data/``). Entries are appended after the core's ``conf/``,
    so a plugin cannot shadow core configs by accident.
    """


# --- data ------------------------------------------------------------------------------------


@hookspec
def framework_register_readers(registry: "ReaderRegistry") -> None:
    """Add this plugin's data formats to ``registry``.

    Called once when the plugin manager is built, after every plugin is registered and before
    any data is read; ``registry`` already holds the built-in formats (``jsonl``, ``csv``,
    ``image_folder``, ``chat``, ``preference``, ``nemo_audio``, ``label_studio``). Call
    ``registry.add(name, reader, detect=None, replace=False)`` for each format; ``reader(path,
    opts)`` returns ``(records, quarantined)``, and ``detect(path) -> bool`` lets ``format=auto``
    choose it. Returns nothing. A name already taken is an error unless ``replace=True``; the
    registry is frozen once every plugin has registered. The formats are then available as
    ``data.format=name`` and to ``load_bundle(ctx.data, format=name, readers=ctx.plugins.readers)``.
    """


@hookspec
def framework_quality_checks(modality: str) -> list["QualityCheck"]:
    """Return extra data checks for the audit stage.

    Called once per audit, after the data is loaded, and once per installed modality before the
    config is composed (to register each check's ``defaults`` under ``data.gates.plugins.<name>``).
    ``modality`` is the running modality's name; return an empty list when your checks do not
    apply to it. Each item follows :class:`framework.data.checks.QualityCheck`. Results appear in
    ``audit/audit.json`` and the data card; a failed check with ``gate=True`` stops the run unless
    gates are not enforced.
    """


# --- evaluation ------------------------------------------------------------------------------


@hookspec
def framework_metrics(modality: str) -> list["Metric"]:
    """Return extra metrics for the evaluate stage.

    Called once per evaluate stage. ``modality`` is the running modality's name; return an empty
    list when your metrics do not apply. Each item follows :class:`framework.evaluation.types.Metric`;
    the values are merged into the split's report and may be named in ``success:`` criteria.
    """


# --- run events ------------------------------------------------------------------------------


@hookspec
def framework_run_start(run: RunInfo) -> None:
    """Called once per process when a run starts, after the run dir exists and before any stage.

    Returns nothing. Use it to open a tracking run or send a notification; check ``run.is_main``
    to act on one process only.
    """


@hookspec
def framework_step(run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
    """Called on the main process every ``trainer.log_every`` optimizer steps.

    ``metrics`` holds the training figures averaged since the last call (``loss``, ``lr``,
    ``grad_norm``, ``items_per_s``...). Returns nothing.
    """


@hookspec
def framework_evaluated(run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
    """Called on the main process after each evaluation: periodic validation during training
    (``split="val"``) and the evaluate stage (one call per split). Returns nothing.
    """


@hookspec
def framework_checkpoint_saved(run: RunInfo, step: int, path: Path) -> None:
    """Called on the main process after a checkpoint is completely written and valid.

    ``path`` is the checkpoint directory. Returns nothing. Use it to upload or mirror checkpoints.
    """


@hookspec
def framework_run_end(run: RunInfo, status: str, metrics: Mapping[str, float]) -> None:
    """Called once per process when a run ends, whatever the outcome.

    ``status`` is ``"completed"``, ``"interrupted"`` (a signal stopped it after saving),
    ``"failed"`` (an exception), or ``"refused"`` (a data gate stopped it before training).
    ``metrics`` holds the final figures (evaluation metrics when the evaluate stage ran).
    Returns nothing.
    """
