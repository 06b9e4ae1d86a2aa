"""The plugin manager and the typed facade the core calls instead of ``pm.hook``.

Every plugin, built-in or third-party, is found through the ``framework.plugins`` entry-point
group. The manager is built by :func:`load_plugins`, never at import time. The facade calls every
hook through ``pm.hook``, so pluggy's calling conventions hold for plugins: ``tryfirst`` and
``trylast``, and ``wrapper=True`` implementations around the others.

Environment switches:

* ``FRAMEWORK_DISABLE_PLUGINS=name1,name2`` blocks the named entry points (by entry-point name or
  distribution name) so a misbehaving plugin can be switched off without uninstalling it;
* ``FRAMEWORK_TRACE_PLUGINS=1`` logs every hook call through pluggy's hook-call monitoring: the
  arguments, the plugins called, and what the call returned or raised (logger
  ``framework.plugins``, level INFO).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import os
import re
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import pluggy

from framework import hookspecs
from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.data.checks import QualityCheck
    from framework.data.readers.registry import ReaderRegistry
    from framework.evaluation.types import Metric
    from framework.modality import Modality

log = logging.getLogger(__name__)

DISABLE_ENV = "FRAMEWORK_DISABLE_PLUGINS"
TRACE_ENV = "FRAMEWORK_TRACE_PLUGINS"
BUILTIN_DISTRIBUTION = "framework"  # the distribution whose entry points are the built-in plugins


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, reported by name and package and then skipped."""

    name: str
    package: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} from package {self.package!r} failed to load: {self.error}"


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, for ``python -m framework --plugins``.

    Attributes:
        name: The entry-point name.
        package: The distribution that provides it.
        version: The distribution's version.
        modalities: Names of the modalities it provides.
        descriptions: Modality name -> its one-line ``description``.
    """

    name: str
    package: str
    version: str
    modalities: tuple[str, ...]
    descriptions: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Plugins:
    """Typed access to the hooks of every loaded plugin.

    Build it with :func:`load_plugins`. Tests may build one around their own
    ``pluggy.PluginManager`` with :meth:`from_manager`.
    """

    pm: pluggy.PluginManager
    failures: list[PluginFailure] = field(default_factory=list)
    packages: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin name -> (dist, version)
    # Log every hook call (pluggy's hook-call monitoring, installed when the facade is built).
    trace: bool = field(default_factory=lambda: bool(os.environ.get(TRACE_ENV)))

    _readers: "ReaderRegistry | None" = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.trace:
            self.pm.add_hookcall_monitoring(_ignore, self._log_call)

    @classmethod
    def from_manager(cls, pm: pluggy.PluginManager) -> "Plugins":
        """Wrap an already-populated plugin manager (used by tests and the contract kit); its
        plugins' readers are registered at once, as :func:`load_plugins` does."""
        pm.check_pending()
        plugins = cls(pm=pm)
        plugins._readers = _register_readers(plugins, strict=True)
        return plugins

    @property
    def readers(self) -> "ReaderRegistry":
        """The data formats of this manager: the built-ins plus every plugin's
        ``framework_register_readers``, frozen. Built with the manager; pass it to
        ``load_bundle(..., readers=ctx.plugins.readers)``."""
        if self._readers is None:
            self._readers = _register_readers(self, strict=True)
        return self._readers

    def _call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """The hook's results through ``pm.hook`` (pluggy's order: last registered first, wrappers
        around them). An exception leaves with a note naming the plugin that raised it."""
        try:
            return getattr(self.pm.hook, hook_name)(**kwargs)  # type: ignore[no-any-return]
        except Exception as exc:
            culprit = self._culprit(exc, hook_name)
            if culprit is not None:
                exc.add_note(f"raised in {hook_name} by {self._describe(culprit)}")
            raise

    def _culprit(self, exc: BaseException, hook_name: str) -> str | None:
        """The name of the plugin whose implementation of ``hook_name`` raised ``exc``: the deepest
        frame of the traceback that is one of the hook's implementations."""
        owners: dict[CodeType, str] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            code = _code_of(impl.function)
            if code is not None:
                owners[code] = impl.plugin_name
        found = None
        tb = exc.__traceback__
        while tb is not None:
            found = owners.get(tb.tb_frame.f_code, found)
            tb = tb.tb_next
        return found

    def _alone(self, hook_name: str, plugin: object) -> Callable[..., list[Any]]:
        """``hook_name`` through pluggy with only ``plugin``'s implementations (its own wrappers
        included), for results that must be told apart by plugin."""
        others = [impl.plugin for impl in getattr(self.pm.hook, hook_name).get_hookimpls() if impl.plugin is not plugin]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)  # type: ignore[return-value]

    def _separable(self, hook_name: str) -> bool:
        """Whether pluggy can call a subset of the hook's plugins (it keeps them in a set, so a
        plugin object that is not hashable, a dataclass instance say, prevents it)."""
        return all(_hashable(impl.plugin) for impl in getattr(self.pm.hook, hook_name).get_hookimpls())

    # --- registration -------------------------------------------------------------------

    def modalities(self) -> dict[str, "Modality"]:
        """Every installed modality by name; two plugins claiming one name is an error naming both."""
        found: dict[str, Modality] = {}
        for modality in _flatten(self._call("framework_modalities")):
            if modality.name in found:
                owners = self._owners_of_modality(modality.name)
                raise FrameworkError(
                    f"modality {modality.name!r} is registered twice: by {' and by '.join(owners)}. "
                    f"Uninstall one, or block it with {DISABLE_ENV}=<plugin name>."
                )
            found[modality.name] = modality
        return dict(sorted(found.items()))

    def _owners_of_modality(self, name: str) -> list[str]:
        owners = [self._describe(plugin_name) for plugin_name, modalities in self._modalities_by_plugin().items()
                  for m in modalities if m.name == name]
        return owners + ["a plugin that could not be told apart"] * (2 - len(owners))

    def _modalities_by_plugin(self) -> dict[str, list["Modality"]]:
        """Plugin name -> the modalities its own ``framework_modalities`` returns, in calling order."""
        found: dict[str, list[Modality]] = {}
        if not self._separable("framework_modalities"):
            return found
        for impl in reversed(self.pm.hook.framework_modalities.get_hookimpls()):
            if impl.plugin_name not in found:
                found[impl.plugin_name] = _flatten(self._alone("framework_modalities", impl.plugin)())
        return found

    def modality(self, name: str) -> "Modality":
        """The modality called ``name``; an unknown name lists the installed ones."""
        available = self.modalities()
        if name not in available:
            listed = ", ".join(available) or "none"
            hint = "".join(f"\n  {f}" for f in self.failures)
            raise FrameworkError(
                f"unknown modality {name!r}. Installed modalities: {listed}. "
                f"Install the plugin that provides it, or pick one with +modality=NAME."
                + (f"\nPlugins that failed to load:{hint}" if hint else "")
            )
        return available[name]

    def config_search_path(self) -> list[str]:
        """Hydra search-path entries contributed by every plugin, built-ins last."""
        entries: list[str] = []
        for contributed in self._call("framework_config_search_path"):
            entries.extend(e for e in contributed or [] if e not in entries)
        return entries

    # --- data and evaluation contributions ----------------------------------------------

    def quality_checks(self, modality: str) -> list["QualityCheck"]:
        """Extra audit checks for ``modality`` from every plugin."""
        return _flatten(self._call("framework_quality_checks", modality=modality))

    def metrics(self, modality: str) -> list["Metric"]:
        """Extra metrics for ``modality`` from every plugin."""
        return _flatten(self._call("framework_metrics", modality=modality))

    # --- events (the engine's EngineEvents protocol, plus run start/end) -----------------

    def run_start(self, run: hookspecs.RunInfo) -> None:
        """Notify observers that ``run`` started."""
        self._notify("framework_run_start", run=run)

    def step(self, run: hookspecs.RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        """Notify observers of training metrics at ``step``."""
        self._notify("framework_step", run=run, step=step, metrics=metrics)

    def evaluated(self, run: hookspecs.RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        """Notify observers of evaluation metrics for ``split`` at ``step``."""
        self._notify("framework_evaluated", run=run, step=step, split=split, metrics=metrics)

    def checkpoint_saved(self, run: hookspecs.RunInfo, step: int, path: Path) -> None:
        """Notify observers that a valid checkpoint was written at ``path``."""
        self._notify("framework_checkpoint_saved", run=run, step=step, path=path)

    def run_end(self, run: hookspecs.RunInfo, status: str, metrics: Mapping[str, float]) -> None:
        """Notify observers that ``run`` ended with ``status``."""
        self._notify("framework_run_end", run=run, status=status, metrics=metrics)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an event hook through ``pm.hook``. An observer's bug must not end a training run:
        when one raises, it is reported by name and the observers not yet called still are."""
        caller = getattr(self.pm.hook, hook_name)
        called: list[object] = []  # plugins called (or failed) before a failure
        while True:
            try:
                caller(**kwargs)
                return
            except Exception as exc:  # noqa: BLE001 - deliberately broad, see above
                culprit = self._culprit(exc, hook_name)
                log.error("%s failed in %s", self._describe(culprit) if culprit else "a plugin", hook_name, exc_info=exc)
                order = [i.plugin for i in reversed(caller.get_hookimpls()) if not (i.wrapper or i.hookwrapper)]
                failed = self.pm.get_plugin(culprit) if culprit else None
                position = next((n for n, plugin in enumerate(order) if plugin is failed), None)
                if position is None or not self._separable(hook_name):
                    return  # a wrapper failed (it wraps every call), or the plugins cannot be told apart
                called += order[: position + 1]
                caller = self.pm.subset_hook_caller(hook_name, remove_plugins=called)

    # --- description --------------------------------------------------------------------

    def describe(self) -> list[PluginInfo]:
        """Loaded plugins with their package and the modalities each provides."""
        per_plugin = self._modalities_by_plugin()
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None or name.startswith("_"):
                continue
            dist, version = self.packages.get(name, ("", ""))
            mods = per_plugin.get(name, [])
            infos.append(PluginInfo(name, dist, version, tuple(m.name for m in mods),
                                    {m.name: getattr(m, "description", "") for m in mods}))
        return infos

    def listing(self) -> str:
        """The text of ``python -m framework --plugins``: each plugin with its package and version,
        each modality with its description, then the plugins that failed to load."""
        lines = ["Installed plugins (entry-point group framework.plugins):"]
        for info in self.describe():
            names = ", ".join(info.modalities) or "no modality"
            lines.append(f"  {info.name:<14} {info.package} {info.version}  modalities: {names}")
            lines += [f"      {m}: {info.descriptions.get(m) or '(no description)'}" for m in info.modalities]
        lines += [f"  FAILED {failure}" for failure in self.failures]
        lines.append("Run one with: python -m framework +modality=NAME")
        return "\n".join(lines)

    def _describe(self, plugin_name: str) -> str:
        dist = self.packages.get(plugin_name, ("", ""))[0]
        if dist:
            return f"plugin {plugin_name!r} (package {dist!r})"
        plugin = self.pm.get_plugin(plugin_name)
        # Plugins registered without a name (tests, notebooks) are named by pluggy after id().
        label = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        return f"plugin {label!r}"

    def _log_call(self, outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl],
                  kwargs: Mapping[str, Any]) -> None:
        """Pluggy's hook-call monitor when tracing: one INFO line per hook call."""
        args = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items())
        called = ", ".join(self._describe(i.plugin_name) for i in reversed(impls)) or "no plugin"
        if outcome.exception is not None:
            log.info("hook %s(%s) in %s raised %s", hook_name, args, called, _short(outcome.exception))
        else:
            log.info("hook %s(%s) in %s -> %s", hook_name, args, called, _short(outcome.get_result()))


def _ignore(*_: Any) -> None:
    """The ``before`` half of the hook-call monitor: the call is logged once it returns."""


def _code_of(function: Callable[..., Any]) -> CodeType | None:
    unwrapped = inspect.unwrap(getattr(function, "__func__", function))
    return getattr(unwrapped, "__code__", None)


def _hashable(obj: object) -> bool:
    # pluggy's subset callers keep plugins in a set.
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flatten(lists: Iterable[list[Any] | None]) -> list[Any]:
    return [item for items in lists for item in items or []]


def _blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def new_manager() -> pluggy.PluginManager:
    """An empty plugin manager that knows the framework's hook specifications."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


@functools.cache
def default_plugins() -> Plugins:
    """The plugins of this process, loaded on first use and shared (CLI and Hydra's search path)."""
    return load_plugins()


def load_plugins(extra: Iterable[object] = (), *, strict: bool = True) -> Plugins:
    """Build the plugin manager from the ``framework.plugins`` entry points.

    A plugin that fails to import is recorded in :attr:`Plugins.failures` (and logged) and the
    others still load. Hook implementations are validated at once, so a misspelled hook name
    (with the hook it was probably meant to be) or an unknown argument raises here, naming the
    plugin; with ``strict=False`` (``--plugins``) such a plugin is recorded as a failure and
    skipped instead. ``extra`` registers plugin objects directly (tests, notebooks). Last, every
    plugin's ``framework_register_readers`` fills :attr:`Plugins.readers`.
    """
    pm = new_manager()
    blocked = _blocked_names()
    plugins = Plugins(pm=pm)
    for ep in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=_builtins_last):
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else ""
        if ep.name in blocked or dist in blocked:
            pm.set_blocked(ep.name)
            log.info("plugin %r (package %r) blocked by %s", ep.name, dist, DISABLE_ENV)
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import error must be reported, not fatal
            failure = PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}")
            plugins.failures.append(failure)
            log.warning("%s; skipped (block it with %s=%s)", failure, DISABLE_ENV, ep.name)
            continue
        plugins.packages[ep.name] = (dist, version)
        _register(pm, module, ep.name, plugins, strict)
    for obj in extra:
        _register(pm, obj, None, plugins, strict)
    _check_hooks(pm, plugins, strict)
    plugins._readers = _register_readers(plugins, strict)
    return plugins


def _register_readers(plugins: Plugins, strict: bool) -> "ReaderRegistry":
    """The built-in formats plus every plugin's ``framework_register_readers``, frozen.

    A plugin whose registration raises (a name another plugin holds, say) is an error naming it;
    with ``strict=False`` it is recorded as a failure, unregistered, and the others register again.
    """
    from framework.data.readers.registry import builtin_readers

    while True:
        registry = builtin_readers()
        try:
            plugins.pm.hook.framework_register_readers(registry=registry)
        except Exception as exc:  # noqa: BLE001 - reported naming the plugin
            name = plugins._culprit(exc, "framework_register_readers")
            owner = plugins._describe(name) if name is not None else "a plugin"
            message = (f"{owner} failed in framework_register_readers: {type(exc).__name__}: {exc}. "
                       f"Fix the plugin, or block it with {DISABLE_ENV}=<plugin name>.")
            if strict or name is None:
                raise FrameworkError(message) from exc
            plugins.failures.append(PluginFailure(name, plugins.packages.pop(name, ("", ""))[0], message))
            plugins.pm.unregister(name=name)
            continue
        registry.freeze()
        return registry


def is_builtin(ep: EntryPoint) -> bool:
    """Whether ``ep`` is one of the framework's own plugins: shipped by the ``framework``
    distribution (names compared as the packaging standard normalises them)."""
    return ep.dist is not None and _normalise(ep.dist.name) == BUILTIN_DISTRIBUTION


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _builtins_last(ep: EntryPoint) -> tuple[int, str]:
    # pluggy calls later registrations first, so registering built-ins first makes them run last:
    # an outside plugin can then override a built-in's first-result hooks.
    return (0 if is_builtin(ep) else 1, ep.name)


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None, plugins: Plugins, strict: bool) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        owner = plugins._describe(name) if name else f"plugin {plugin!r}"
        message = (f"{owner} has a hook whose signature does not match the contract: {exc}. "
                   f"See framework/hookspecs.py or docs/plugins.md for the arguments each hook takes.")
        if strict:
            raise FrameworkError(message) from exc
        plugins.failures.append(PluginFailure(name or owner, plugins.packages.get(name or "", ("", ""))[0], message))


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("framework_") and callable(getattr(hookspecs, n)))


def unknown_hooks(pm: pluggy.PluginManager) -> dict[str, list[str]]:
    """Plugin name -> the hooks it implements that the framework does not define."""
    found: dict[str, list[str]] = {}
    for hook_name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, hook_name)
        if hook_name.startswith("_") or getattr(caller, "spec", True) is not None:
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                found.setdefault(impl.plugin_name, []).append(hook_name)
    return found


def _did_you_mean(hook_name: str) -> str:
    close = difflib.get_close_matches(hook_name, _hook_names(), n=1, cutoff=0.6)
    return f"{hook_name!r} (did you mean {close[0]!r}?)" if close else repr(hook_name)


def _check_hooks(pm: pluggy.PluginManager, plugins: Plugins, strict: bool) -> None:
    for plugin_name, names in unknown_hooks(pm).items():
        owner = plugins._describe(plugin_name)
        message = (f"{owner} implements hook(s) the framework does not define: "
                   f"{', '.join(_did_you_mean(n) for n in names)}. Hooks: {', '.join(_hook_names())} "
                   f"(docs/plugins.md lists each).")
        if strict:
            raise FrameworkError(message)
        plugins.failures.append(PluginFailure(plugin_name, plugins.packages.get(plugin_name, ("", ""))[0], message))
        plugins.packages.pop(plugin_name, None)
        pm.unregister(name=plugin_name)
    pm.check_pending()  # anything pluggy rejects that the loop above did not
