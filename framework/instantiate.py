"""``_target_`` instantiation restricted to allowed module prefixes.

A config is code by another name: ``_target_: os.system`` would run a shell command. So every
``_target_`` in a run's config is checked before anything is built, against the core, the
installed plugins' modules, ``torch``, and the prefixes the user lists in ``allowed_targets``.
Objects are only ever built from config text; nothing read from a checkpoint or a data file is
instantiated or unpickled.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Iterable, Iterator

from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from framework.errors import FrameworkError
from framework.hookspecs import ENTRY_POINT_GROUP

BUILTIN_PREFIXES = ("framework.", "plugins.", "torch.")


def plugin_prefixes() -> list[str]:
    """Top-level modules of every installed plugin, as ``name.`` prefixes."""
    return sorted({ep.value.split(":")[0].split(".")[0] + "." for ep in entry_points(group=ENTRY_POINT_GROUP)})


def allowed_prefixes(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The prefixes a ``_target_`` may start with: core, plugins, torch, and ``extra``."""
    user = [p if p.endswith(".") else p + "." for p in extra]
    return tuple(dict.fromkeys([*BUILTIN_PREFIXES, *plugin_prefixes(), *user]))


def _targets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, DictConfig):
        for key in node.keys():
            child_path = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield path or "<root>", str(node._get_node(key)._value())
            else:
                yield from _targets(node._get_node(key), child_path)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            yield from _targets(node._get_node(i), f"{path}[{i}]")


def check_targets(cfg: DictConfig, extra: Iterable[str] = (), skip: Iterable[str] = ("hydra",)) -> None:
    """Refuse the config if any ``_target_`` outside ``skip`` names a disallowed callable."""
    prefixes = allowed_prefixes(extra)
    skipped = tuple(skip)
    for path, target in _targets(cfg):
        if path.split(".")[0] in skipped:
            continue
        if not any(target.startswith(p) for p in prefixes):
            raise FrameworkError(
                f"refused _target_ {target!r} at {path}: only callables under "
                f"{', '.join(prefixes)} may be instantiated from config. If you trust it, add its "
                f"module to allowed_targets (e.g. allowed_targets=[{target.rsplit('.', 1)[0]}])."
            )


def instantiate(node: Any, extra: Iterable[str] = (), **kwargs: Any) -> Any:
    """Check every ``_target_`` under ``node``, then build it with Hydra's instantiate."""
    config = node if isinstance(node, (DictConfig, ListConfig)) else OmegaConf.create(node)
    check_targets(config, extra, skip=())
    return hydra_instantiate(config, **kwargs)
