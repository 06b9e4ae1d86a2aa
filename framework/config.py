"""The root config schema, its registration with Hydra, and readable config errors.

Each component owns its node: ``trainer`` (:mod:`framework.training.config`), ``data``
(:mod:`framework.data.config`), ``tracking`` (:mod:`framework.tracking.config`). A modality owns
``modality`` and ``model`` through :attr:`framework.modality.Modality.sections`. This module only
assembles them, so that Hydra rejects a misspelled key and :func:`explain` can name the valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from framework.data.config import DataConfig
from framework.errors import FrameworkError, first_line
from framework.tracking.config import TrackingConfig
from framework.training.config import TrainerConfig

STAGES = ("audit", "train", "evaluate", "preannotate", "export")


@dataclass
class EvaluationConfig:
    """What the evaluate stage measures."""

    splits: list[str] = field(default_factory=lambda: ["val", "test"])  # missing splits are skipped
    enforce_success: bool = True  # false: failed `success:` criteria are reported, exit code stays 0
    retention: Optional[str] = None  # manifest or folder (under data.root) of what the model must not forget
    retention_format: str = "auto"  # reader for `retention`


@dataclass
class SweepConfig:
    """How a multirun's summary table is ranked (best first)."""

    metric: Optional[str] = None  # None: the first ``success`` metric, else ``val_loss``
    mode: Optional[str] = None  # max | min; None: from the success criterion's direction


@dataclass
class FrameworkConfig:
    """The whole run config; ``modality`` and ``model`` are typed by the selected modality."""

    modality: Any = None
    model: Any = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    success: dict[str, str] = field(default_factory=dict)  # metric -> ">=0.9" / "<=0.15"
    stages: list[str] = field(default_factory=lambda: ["audit", "train", "evaluate", "export"])
    seed: int = 0
    checkpoint: Optional[str] = None  # weights for evaluate/export when train does not run
    callbacks: dict[str, Any] = field(default_factory=dict)  # `_target_` event observers
    allowed_targets: list[str] = field(default_factory=list)  # extra `_target_` module prefixes
    sweep: SweepConfig = field(default_factory=SweepConfig)


def register_configs() -> None:
    """Register the root schema (``framework_schema``) and the framework's resolvers (idempotent).

    Resolvers: ``${framework.pkg:PACKAGE/sub/path}`` is the path of a file an installed package
    ships (plugins point their bundled default data at it); ``${framework.run_id:}`` is the run's
    timestamp, shared by every rank of a distributed run.
    """
    from hydra.core.config_store import ConfigStore

    _register_plugin_check_defaults()
    ConfigStore.instance().store(name="framework_schema", node=FrameworkConfig)
    OmegaConf.register_new_resolver("framework.pkg", package_path, replace=True)
    OmegaConf.register_new_resolver("framework.run_id", run_id, replace=True)


def _register_plugin_check_defaults() -> None:
    """Plugin checks' ``defaults`` become ``data.gates.plugins.<name>`` nodes of the schema."""
    from framework.data.checks import register_plugin_check_defaults
    from framework.plugins import default_plugins

    register_plugin_check_defaults(default_plugins())


RUN_ID_ENV = "FRAMEWORK_RUN_ID"


def run_id() -> str:
    """This run's id; under torchrun every rank receives rank 0's through ``FRAMEWORK_RUN_ID``."""
    if RUN_ID_ENV not in os.environ:
        os.environ[RUN_ID_ENV] = new_run_id()
    return os.environ[RUN_ID_ENV]


def new_run_id() -> str:
    """A fresh id, unique across processes started at the same moment and sorted by start time.

    ``2026-12-01_07-54-12.123456-3f9a1c``: the time to the microsecond, then six random hex digits,
    so jobs launched together never share (and "resume") one run dir, and ``ls`` lists runs in order.
    """
    now = time.time()
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(now))
    return f"{stamp}.{int(now % 1 * 1e6):06d}-{os.urandom(3).hex()}"


def package_path(spec: str) -> str:
    """``"pkg/sub/file"`` -> the absolute path of ``sub/file`` inside the installed package ``pkg``."""
    package, _, rest = spec.partition("/")
    try:
        root = Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:
        raise FrameworkError(f"${{framework.pkg:{spec}}}: package {package!r} is not installed") from None
    return str(root / rest) if rest else str(root)


# --- typed sections owned by a modality --------------------------------------------------


def typed_section(cfg: DictConfig, section: str, schema: type) -> Any:
    """Validate ``cfg[section]`` against the dataclass ``schema``; return it typed.

    Unknown keys raise :class:`FrameworkError` naming the valid keys.
    """
    node = cfg.get(section)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node if node is not None else {})
    except OmegaConfBaseException as exc:
        message = explain(exc, prefix=section, sections={section: schema})
        key, modality = _unknown_key(message), cfg.get("modality")
        origin = config_origin(key, modality.get("name") if hasattr(modality, "get") else None) if key else None
        raise FrameworkError(message + (f" The key is set in {origin}: fix it there." if origin else "")) from None
    OmegaConf.set_readonly(merged, False)
    return merged


def _unknown_key(message: str) -> str | None:
    match = re.match(r"unknown config key '([^']+)'", message)
    return match.group(1) if match else None


def _config_folders() -> list[Path]:
    """The core's ``conf/`` and every plugin's ``pkg://`` config folder, as paths."""
    from framework.plugins import default_plugins

    folders = [conf_dir()]
    for entry in default_plugins().config_search_path():
        if entry.startswith("pkg://"):
            try:
                folders.append(Path(str(importlib.resources.files(entry.removeprefix("pkg://")))))
            except (ModuleNotFoundError, TypeError):
                continue
        elif entry.startswith("file://"):
            folders.append(Path(entry.removeprefix("file://")))
    return folders


def config_origin(key: str, modality: str | None) -> str | None:
    """The shipped config file that sets the dotted ``key``: the modality's own
    ``modality/NAME.yaml`` (package ``_global_``), or a group option such as ``model/small.yaml``."""
    import yaml

    parts = key.split(".")
    for folder in _config_folders():
        for path in sorted(folder.rglob("*.yaml")):
            group = path.parent.relative_to(folder).parts
            text = path.read_text(encoding="utf-8")
            is_global = "@package _global_" in text.split("\n", 1)[0] or (group and group[0] == "modality")
            if is_global and (group != ("modality",) or path.stem != modality):
                continue
            rest = parts if is_global else parts[len(group):] if tuple(parts[:len(group)]) == group else None
            node: Any = yaml.safe_load(text) if rest else None
            for part in rest or []:
                node = node.get(part) if isinstance(node, dict) and part in node else _MISSING
            if rest and node is not _MISSING:
                return str(path)
    return None


_MISSING = object()


# --- readable errors ---------------------------------------------------------------------


def _children(node: Any) -> dict[str, Any] | None:
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    return node if isinstance(node, dict) else None


def locate_unknown(path: str, sections: Mapping[str, type] | None = None) -> tuple[str, str, str, list[str]] | None:
    """For a dotted ``path`` that does not exist, the first segment that is unknown.

    Walks the default values of the schema (dataclasses and dicts alike, the modality's
    ``sections`` for their nodes) and returns ``(parent path, parent type, bad key, valid keys)``,
    or ``None`` when the path exists or cannot be followed.
    """
    node: Any = FrameworkConfig()
    parts = path.split(".")
    for i, part in enumerate(parts):
        if i == 0 and sections and part in sections:
            try:
                node = sections[part]()
            except TypeError:  # a schema without defaults for every field
                return None
            continue
        children = _children(node)
        if children is None:
            return None
        if part not in children:
            kind = type(node).__name__ if dataclasses.is_dataclass(node) else "settings"
            return ".".join(parts[:i]) or "the top level", kind, part, list(children)
        node = children[part]
    return None


def _keys_message(key: str, keys: list[str]) -> str:
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Valid keys: {', '.join(keys)}.{hint}"


def explain(exc: BaseException, prefix: str = "", sections: Mapping[str, type] | None = None) -> str:
    """Turn a Hydra/OmegaConf config error into a message that names the valid keys."""
    from omegaconf.errors import ConfigAttributeError

    cause = exc
    while cause.__cause__ is not None and not isinstance(cause, ConfigKeyError):
        cause = cause.__cause__
    text = str(exc).strip()
    is_key_error = isinstance(cause, (ConfigKeyError, ConfigAttributeError))
    full_key = getattr(cause, "full_key", None) if is_key_error else None
    override = re.search(r"Could not override '([^']+)'", text)
    if override:
        full_key = override.group(1)
    elif not full_key and is_key_error:
        match = re.search(r"Key '([^']+)' (?:not in|is not in)", text)
        full_key = match.group(1) if match else None
    typed = _type_message(exc, prefix)
    if typed is not None:
        return typed
    if not full_key:
        return _with_reason(text, exc)
    full_key = f"{prefix}.{full_key}" if prefix and not full_key.startswith(prefix + ".") else full_key
    found = locate_unknown(full_key, sections)
    if found is None:
        return f"unknown config key {full_key!r}. {text}"
    where, kind, key, keys = found
    return (f"unknown config key {full_key!r}: {key!r} is not a setting of {where} ({kind}). "
            f"{_keys_message(key, keys)}")


#: What a value of each kind looks like, for a type error: (what the error says, it wants, example).
_WANTED = (("converted to Float", "a number", "0.001"), ("converted to Integer", "an integer", "3"),
           ("converted to Boolean", "true or false", "true"), ("is not a ListConfig", "a list", "[64,32]"),
           ("DictConfig", "a mapping", "{key: value}"))


def _type_message(exc: BaseException, prefix: str = "") -> str | None:
    """A type error as one line: which key, what type it wants, an example; else ``None``."""
    from omegaconf.errors import ValidationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__
    if cause is None:
        return None
    reason = first_line(cause)
    wanted = next(((w, e) for said, w, e in _WANTED if said in str(cause)), None)
    if wanted is None:
        return None
    override = re.search(r"Error merging override ([^=\s]+)=(\S*)", str(exc))
    if override:
        key, value = override.group(1).lstrip("+~"), override.group(2).rstrip(":")
    else:
        key = str(getattr(cause, "full_key", "") or "?")
        key = f"{prefix}.{key}" if prefix and not key.startswith(prefix + ".") else key
        value = getattr(cause, "value", "?")
    return f"{key}={value} has the wrong type: {key} wants {wanted[0]}, e.g. {key}={wanted[1]} ({reason.rstrip('.')})"


_THRESHOLD = re.compile(r"^(\+{0,2})([\w.\-/]+)=((?:>=|<=|==|>|<)[^'\"]*)$")


def normalise_overrides(overrides: list[str]) -> list[str]:
    """Overrides as Hydra's grammar needs them, written the way the docs show them.

    A value starting with a comparison (``'+success.accuracy=>=0.9'``) is quoted, and ``+``
    on a ``success.`` criterion becomes ``++`` (add, or replace the modality's own threshold).
    """
    out = []
    for text in overrides:
        match = _THRESHOLD.match(text)
        if match:
            plus, key, value = match.groups()
            plus = "++" if plus and key.startswith("success.") else plus
            text = f"{plus}{key}='{value}'"
        out.append(text)
    return out


def override_parse_message(exc: Any) -> str:
    """One line for an override Hydra cannot parse, with the usual fix."""
    first = str(getattr(exc, "message", "") or exc).strip().splitlines()[0]
    first = re.sub(r"^LexerNoViableAltException: ", "", first)
    override = getattr(exc, "override", "") or first
    return (f"cannot parse the override {override!r} ({first}). Quote values that hold spaces, commas, brackets "
            "or comparison signs, e.g. 'trainer.lr=1e-3' or 'success.accuracy=\">=0.9\"'; see "
            "https://hydra.cc/docs/advanced/override_grammar/basic/")


def missing_option_message(exc: Any) -> str | None:
    """For an unknown option of a config group (``model=vitt``): the group, the option and the
    valid options; ``None`` when ``exc`` is about something else."""
    missing = getattr(exc, "missing_cfg_file", None) or ""
    group, _, option = str(missing).rpartition("/")
    if not group:
        return None
    options = sorted(getattr(exc, "options", None) or [])
    close = difflib.get_close_matches(option, options, n=1)
    # A modality is appended to the defaults list (+modality=NAME); other groups are chosen (group=NAME).
    hint = f" Did you mean {'+' if group == 'modality' else ''}{group}={close[0]}?" if close else ""
    if group == "modality":
        return (f"unknown modality {option!r}. Installed modalities: {', '.join(options) or 'none'}.{hint} "
                f"Install the plugin that provides it (python -m framework --plugins lists them).")
    return (f"config group {group!r} has no option {option!r}. Valid options: {', '.join(options) or 'none'}.{hint} "
            f"Choose one with {group}=NAME, or add {group}/{option}.yaml to your plugin's config folder.")


def _with_reason(text: str, exc: BaseException) -> str:
    """``text`` plus the first line of the innermost cause when ``text`` does not already say it
    (``Error merging override trainer.lr=abc`` alone gives no reason)."""
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    reason = first_line(cause)
    return f"{text}: {reason}" if reason and reason not in text else text


def conf_dir() -> Path:
    """The core's Hydra config folder: inside the package when installed from a wheel, else the
    repository's ``conf/``."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return packaged if packaged.is_dir() else here.parent / "conf"
