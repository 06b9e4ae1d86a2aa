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
import re
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


def resolve_target(target: str, packages: Iterable[str], kind: Kind | None = None, where: str = "<root>",
                   label: str = "_target_") -> type:
    """Check ``target`` against the policy in the module docstring and return the class it names.

    ``label`` names the key in messages (``_target_``, or ``'()'``/``class`` in a logging config).

    Raises:
        FrameworkError: One line naming the target, where it is, why it is refused and what to do.
    """
    packages = tuple(packages)
    parts = target.split(".")
    hint = (f"If you trust it, allow its package on the command line: allowed_targets=[{parts[0]}] "
            "(see docs/security.md).")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise FrameworkError(f"refused {label} {target!r} at {where}: not a dotted class name")
    if not _in_package(target, packages):
        raise FrameworkError(f"refused {label} {target!r} at {where}: only classes from the packages "
                             f"{', '.join(packages)} may be instantiated from config. {hint}")
    obj = _locate(target, where)
    if not inspect.isclass(obj):
        raise FrameworkError(f"refused {label} {target!r} at {where}: it is a {type(obj).__name__}, not a class; "
                             f"only classes may be named by {label} (functions such as torch.load or os.mkdir "
                             "run code directly)")
    home = getattr(obj, "__module__", "") or ""
    if not _in_package(home, packages):
        raise FrameworkError(f"refused {label} {target!r} at {where}: it is {home}.{obj.__qualname__}, defined "
                             f"outside the allowed packages {', '.join(packages)}. {hint}")
    problem = kind(obj) if kind is not None else None
    if problem:
        raise FrameworkError(f"refused {label} {target!r} at {where}: {problem}")
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


#: Where a config's ``hydra`` node names code that Hydra itself builds or imports before the job runs.
HYDRA_LOGGING_KEYS = ("job_logging", "hydra_logging")
HYDRA_PLUGIN_KEYS = ("launcher", "sweeper")
#: The modules Hydra's own plugins may name below their ``_target_`` (the Optuna sweeper's sampler).
HYDRA_PLUGIN_PACKAGES = ("optuna.samplers", "optuna.pruners")
#: Streams a logging config may name with ``ext://`` (anything else would import a module of its choice).
LOGGING_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
#: Environment variables that make a process load code; ``hydra.job.env_set`` may not set them.
CODE_ENV = re.compile(r"^(LD_\w*|DYLD_\w*|PYTHON\w*|PATH|BASH_ENV|ENV|PERL\w*|RUBY\w*|NODE_OPTIONS)$")


def _logging_kind(base: type) -> Kind:
    def kind(cls: type) -> str | None:
        return None if issubclass(cls, base) else f"it is not a {base.__module__}.{base.__qualname__}"

    return kind


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def check_logging_config(config: Any, extra: Iterable[str] = (), where: str = "hydra.job_logging") -> None:
    """Refuse a ``logging.config.dictConfig`` mapping that names code outside the policy.

    Called on ``hydra.job_logging`` and ``hydra.hydra_logging`` before Hydra configures logging. A
    handler, formatter or filter named by ``'()'`` or ``class`` must be a class of that kind
    (``logging.Handler``, ``Formatter``, ``Filter``) defined in ``logging`` or an allowed package;
    a file handler's file must end in ``.log``; no other ``'()'`` factory and no ``ext://`` other
    than ``sys.stdout``/``sys.stderr`` may appear.

    Raises:
        FrameworkError: One line naming the key, the value and why it is refused.
    """
    import logging

    tree = resolved(config)
    if not isinstance(tree, Mapping):
        return
    packages = (*allowed_packages(extra), "logging")
    checked: set[str] = set()
    for section, base in (("handlers", logging.Handler), ("formatters", logging.Formatter),
                          ("filters", logging.Filter)):
        for name, entry in (tree.get(section) or {}).items():
            if not isinstance(entry, Mapping):
                continue
            for key in ("()", "class"):
                if key not in entry:
                    continue
                spot, label = f"{where}.{section}.{name}", "'()'" if key == "()" else "class"
                if not isinstance(entry[key], str):
                    raise FrameworkError(f"refused {label} at {spot}: it must be a dotted class name, got {entry[key]!r}")
                cls = resolve_target(entry[key], packages, _logging_kind(base), spot, label=label)
                checked.add(spot)
                filename = str(entry.get("filename", ""))
                if issubclass(cls, logging.FileHandler) and not filename.endswith(".log"):
                    raise FrameworkError(f"refused {spot}.filename {filename!r}: a log file a config names must end "
                                         "in .log (a log line written to a .py or .pth file is code)")
    for path, key, value in _walk(tree, where):
        if key == "()" and path not in checked:
            raise FrameworkError(f"refused '()' {value!r} at {path}: a logging config may name a factory only for "
                                 "a handler, formatter or filter")
        if isinstance(value, str) and value.startswith("ext://") and value not in LOGGING_STREAMS:
            raise FrameworkError(f"refused {value!r} at {path}.{key}: a logging config may name only "
                                 f"{' or '.join(LOGGING_STREAMS)} with ext://")


def check_hydra_plugin(node: Any, extra: Iterable[str] = (), where: str = "hydra.launcher") -> None:
    """Refuse a launcher or sweeper config that names code outside the policy.

    Its own ``_target_`` must be a Hydra plugin (``hydra._internal.core_plugins`` or
    ``hydra_plugins``: installed packages, which Hydra itself also insists on); every ``_target_``
    below it (Hydra builds them recursively) must pass the ``_target_`` policy, with the Optuna
    sweeper's samplers and pruners allowed as well.
    """
    tree = resolved(node)
    if not isinstance(tree, Mapping):
        return
    own = tree.get("_target_")
    if own is not None and not (isinstance(own, str) and own.startswith(("hydra._internal.core_plugins.", "hydra_plugins."))):
        raise FrameworkError(f"refused _target_ {own!r} at {where}: a launcher or sweeper must be an installed Hydra "
                             "plugin (hydra_plugins.*)")
    packages = (*allowed_packages(extra), *HYDRA_PLUGIN_PACKAGES)
    for spot, target in _targets(tree, where):
        if spot == where:
            continue
        if not isinstance(target, str):
            raise FrameworkError(f"refused _target_ at {spot}: it must be a dotted class name, got {target!r}")
        resolve_target(target, packages, None, spot)


def check_hydra_config(hydra: Any, extra: Iterable[str] = ()) -> None:
    """Apply the ``_target_`` policy to every place a composed ``hydra`` node names code.

    Called by the entry point on the composed config of the run (and of every job of a sweep)
    *before* ``hydra.main`` builds callbacks, launcher or sweeper and configures logging:
    ``hydra.callbacks``, ``hydra.job_logging``, ``hydra.hydra_logging``, ``hydra.launcher``,
    ``hydra.sweeper`` and ``hydra.job.env_set``. ``extra`` is ``allowed_targets`` from the command line.

    Raises:
        FrameworkError: One line naming the key and why it is refused.
    """
    if hydra is None:
        return
    select = (lambda key: OmegaConf.select(hydra, key)) if isinstance(hydra, DictConfig) else hydra.get
    callbacks = select("callbacks")
    if callbacks:
        check_hydra_callbacks(callbacks, extra)
    for key in HYDRA_LOGGING_KEYS:
        if select(key) is not None:
            check_logging_config(select(key), extra, f"hydra.{key}")
    for key in HYDRA_PLUGIN_KEYS:
        if select(key) is not None:
            check_hydra_plugin(select(key), extra, f"hydra.{key}")
    job = select("job")
    env = (resolved(job) or {}).get("env_set") if job is not None else None
    for name in env or {}:
        if CODE_ENV.match(str(name)):
            raise FrameworkError(f"refused hydra.job.env_set.{name}: a config may not set {name}, which makes "
                                 "processes load code; set it in your shell if you mean it")


#: Setting this environment variable to ``1`` lets a config file turn ``trust_remote_code`` on.
REMOTE_CODE_ENV = "FRAMEWORK_TRUST_REMOTE_CODE"


def check_remote_code(cfg: Any, overrides: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Refuse ``trust_remote_code: true`` (``model.trust_remote_code`` or anywhere else) from a config file.

    Called by the entry point on every composed job config before Hydra runs. Running a model
    directory's own code may be asked for only by the person at the shell: an override
    ``model.trust_remote_code=true`` on the command line, or ``FRAMEWORK_TRUST_REMOTE_CODE=1``.

    Raises:
        FrameworkError: naming the key and saying how to allow it.
    """
    import os

    environ = os.environ if environ is None else environ
    if environ.get(REMOTE_CODE_ENV) == "1":
        return
    given = {str(o).lstrip("+~").partition("=")[0].strip(): str(o).partition("=")[2].strip().lower()
             for o in overrides if "=" in str(o)}
    tree = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    for path, key, raw in _walk(tree, ""):
        if key != "trust_remote_code" or path.startswith(".hydra"):
            continue
        name = f"{path}.{key}".lstrip(".")
        value = OmegaConf.select(cfg, name) if isinstance(cfg, DictConfig) else raw
        if value is True or str(value).lower() == "true":
            if given.get(name) == "true":
                continue
            raise FrameworkError(f"{name}: true comes from a config file, not the command line: a config file may "
                                 "not let a model directory run its own code. If you trust the model, pass "
                                 f"{name}=true yourself (or set {REMOTE_CODE_ENV}=1; see docs/security.md).")
