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

    ConfigStore.instance().store(name="framework_schema", node=FrameworkConfig)
    OmegaConf.register_new_resolver("framework.pkg", package_path, replace=True)
    OmegaConf.register_new_resolver("framework.run_id", run_id, replace=True)


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
        raise FrameworkError(explain(exc, prefix=section)) from None
    OmegaConf.set_readonly(merged, False)
    return merged


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
    if not full_key:
        return _with_reason(text, exc)
    full_key = f"{prefix}.{full_key}" if prefix and not full_key.startswith(prefix + ".") else full_key
    found = locate_unknown(full_key, sections)
    if found is None:
        return f"unknown config key {full_key!r}. {text}"
    where, kind, key, keys = found
    return (f"unknown config key {full_key!r}: {key!r} is not a setting of {where} ({kind}). "
            f"{_keys_message(key, keys)}")


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
