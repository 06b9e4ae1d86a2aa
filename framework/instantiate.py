"""``_target_`` instantiation: config is data, so what a ``_target_`` names is checked as an object.

A config is code by another name: ``_target_: os.system`` would run a shell command. The threat
model (``docs/security.md``) is that a config file or a sweep someone else wrote must not run code;
only the person at the shell may widen what is allowed. So, before anything is built:

1. the config is resolved first (``${oc.create:...}`` and other interpolations cannot smuggle a
   ``_target_`` past the check), and what is built is exactly the resolved tree that was checked;
2. a ``_target_``'s top-level package must be allowed (the core, the installed plugins' packages,
   and ``allowed_targets`` given on the command line) *before anything is imported*;
3. the name is then resolved and the **object** checked: it must be a class (never a function such
   as ``torch.load`` or ``os.mkdir``), defined in an allowed package (``torch.os.mkdir`` is
   ``posix.mkdir``, so attribute chains through an allowed module are refused), and of the kind the
   place asks for (an event observer implementing ``framework_*`` hooks for ``callbacks``, a Hydra
   ``Callback`` for ``hydra.callbacks``).

Objects are only ever built from config text; nothing read from a checkpoint or a data file is
instantiated or unpickled.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Iterator, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from framework.errors import FrameworkError
from framework.hookspecs import ENTRY_POINT_GROUP

#: Packages whose classes may be named by ``_target_`` without asking: the core and the built-ins.
BUILTIN_PACKAGES = ("framework", "plugins")

#: A check on the resolved class; returns why it is unfit, or ``None`` when it is fine.
Kind = Callable[[type], "str | None"]


def plugin_packages() -> list[str]:
    """Top-level packages of every installed plugin."""
    return sorted({ep.value.split(":")[0].split(".")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)})


def allowed_packages(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The packages a ``_target_`` may come from: core, built-in and installed plugins, and ``extra``."""
    user = [str(p).strip().rstrip(".") for p in extra if str(p).strip()]
    return tuple(dict.fromkeys([*BUILTIN_PACKAGES, *plugin_packages(), *user]))


def allowed_prefixes(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The allowed packages as ``name.`` prefixes (kept for callers of the earlier API)."""
    return tuple(p + "." for p in allowed_packages(extra))


def _in_package(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def event_observer(cls: type) -> str | None:
    """The kind ``callbacks:`` asks for: a class implementing at least one ``framework_*`` hook."""
    hooks = [n for n in dir(cls) if n.startswith("framework_") and callable(getattr(cls, n, None))]
    return None if hooks else "it implements no framework_* event hook (see docs/plugins.md#events)"


def hydra_callback(cls: type) -> str | None:
    """The kind ``hydra.callbacks:`` asks for: a subclass of Hydra's ``Callback``."""
    from hydra.experimental.callback import Callback

    return None if issubclass(cls, Callback) else "it is not a hydra.experimental.callback.Callback"


def resolve_target(target: str, packages: Iterable[str], kind: Kind | None = None, where: str = "<root>") -> type:
    """Check ``target`` against the policy in the module docstring and return the class it names.

    Raises:
        FrameworkError: One line naming the target, where it is, why it is refused and what to do.
    """
    packages = tuple(packages)
    parts = target.split(".")
    hint = (f"If you trust it, allow its package on the command line: allowed_targets=[{parts[0]}] "
            "(see docs/security.md).")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise FrameworkError(f"refused _target_ {target!r} at {where}: not a dotted class name")
    if not _in_package(target, packages):
        raise FrameworkError(f"refused _target_ {target!r} at {where}: only classes from the packages "
                             f"{', '.join(packages)} may be instantiated from config. {hint}")
    obj = _locate(target, where)
    if not inspect.isclass(obj):
        raise FrameworkError(f"refused _target_ {target!r} at {where}: it is a {type(obj).__name__}, not a class; "
                             "only classes may be named by _target_ (functions such as torch.load or os.mkdir "
                             "run code directly)")
    home = getattr(obj, "__module__", "") or ""
    if not _in_package(home, packages):
        raise FrameworkError(f"refused _target_ {target!r} at {where}: it is {home}.{obj.__qualname__}, defined "
                             f"outside the allowed packages {', '.join(packages)}. {hint}")
    problem = kind(obj) if kind is not None else None
    if problem:
        raise FrameworkError(f"refused _target_ {target!r} at {where}: {problem}")
    return obj


def _locate(target: str, where: str) -> Any:
    parts = target.split(".")
    module, attrs = None, parts
    for i in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        attrs = parts[i:]
        break
    if module is None:
        raise FrameworkError(f"_target_ {target!r} at {where}: no module {parts[0]!r} is installed")
    obj: Any = module
    for attr in attrs:
        if not hasattr(obj, attr):
            raise FrameworkError(f"_target_ {target!r} at {where}: {type(obj).__name__} "
                                 f"{getattr(obj, '__name__', obj)!r} has no attribute {attr!r}")
        obj = getattr(obj, attr)
    return obj


def resolved(node: Any) -> Any:
    """``node`` as plain containers with every interpolation resolved (what gets checked and built)."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _targets(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                yield path or "<root>", value
            else:
                yield from _targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _targets(value, f"{path}[{i}]")


def check_tree(tree: Any, extra: Iterable[str] = (), kind: Kind | None = None, path: str = "",
               skip: Iterable[str] = ()) -> None:
    """Check every ``_target_`` in a resolved ``tree``; the outermost one (at ``path``) against ``kind``."""
    packages = allowed_packages(extra)
    skipped = tuple(skip)
    for where, target in _targets(tree, path):
        if where.split(".")[0] in skipped:
            continue
        if not isinstance(target, str):
            raise FrameworkError(f"refused _target_ at {where}: it must be a dotted class name, got {target!r}")
        resolve_target(target, packages, kind if where == (path or "<root>") else None, where)


def check_targets(cfg: DictConfig, extra: Iterable[str] = (), skip: Iterable[str] = ("hydra",)) -> None:
    """Refuse the config if any ``_target_`` outside ``skip`` names a disallowed object.

    Interpolations are resolved first. ``callbacks.*`` entries must be event observers.
    """
    tree = resolved(cfg)
    skipped = tuple(skip)
    callbacks = (tree or {}).get("callbacks") or {} if isinstance(tree, Mapping) else {}
    for name, node in callbacks.items():
        check_tree(node, extra, kind=event_observer, path=f"callbacks.{name}")
    check_tree(tree, extra, skip=(*skipped, "callbacks"))


def check_hydra_callbacks(callbacks: Any, extra: Iterable[str] = ()) -> None:
    """Refuse ``hydra.callbacks`` entries other than Hydra ``Callback`` classes from allowed packages."""
    tree = resolved(callbacks)
    for name, node in (tree or {}).items():
        check_tree(node, extra, kind=hydra_callback, path=f"hydra.callbacks.{name}")


def instantiate(node: Any, extra: Iterable[str] = (), kind: Kind | None = None, **kwargs: Any) -> Any:
    """Resolve ``node``, check every ``_target_`` in it, then build exactly that resolved tree.

    Args:
        node: A config node or plain mapping with a ``_target_``.
        extra: Packages allowed on top of the core and the installed plugins.
        kind: A check on the outermost class (e.g. :func:`event_observer`).
        kwargs: Passed to Hydra's ``instantiate``.
    """
    from hydra.utils import instantiate as hydra_instantiate

    tree = resolved(node)
    check_tree(tree, extra, kind=kind)
    return hydra_instantiate(OmegaConf.create(tree) if isinstance(tree, (dict, list)) else tree, **kwargs)


def trusted_targets(overrides: Iterable[str]) -> list[str]:
    """The ``allowed_targets`` entries given in command-line ``overrides`` (the only trusted source)."""
    found: list[str] = []
    for override in overrides:
        key, sep, value = str(override).lstrip("+~").partition("=")
        if sep and key.strip() == "allowed_targets":
            found += [v.strip().strip("'\"") for v in value.strip().strip("[]").split(",") if v.strip()]
    return found


def check_allowed_targets(configured: Iterable[str], overrides: Iterable[str]) -> list[str]:
    """``allowed_targets`` as configured, refusing entries not given on the command line.

    A config file (an experiment, a plugin's config, a sweep file) may not widen what can be
    instantiated: only the person at the shell may, by typing ``allowed_targets=[pkg]``.
    """
    trusted = set(trusted_targets(overrides))
    entries = [str(e) for e in configured]
    untrusted = [e for e in entries if e not in trusted]
    if untrusted:
        raise FrameworkError(
            f"allowed_targets {untrusted} comes from a config file, not the command line: a config file may "
            f"not widen what can be instantiated. If you trust it, pass allowed_targets=[{','.join(untrusted)}] "
            "yourself (see docs/security.md)."
        )
    return entries
