"""The plugin manager and the typed facade the core calls instead of ``pm.hook``.

Every plugin, built-in or third-party, is found through the ``framework.plugins`` entry-point
group. The manager is built by :func:`load_plugins`, never at import time.

Environment switches:

* ``FRAMEWORK_DISABLE_PLUGINS=name1,name2`` blocks the named entry points (by entry-point name or
  distribution name) so a misbehaving plugin can be switched off without uninstalling it;
* ``FRAMEWORK_TRACE_PLUGINS=1`` logs every hook call: which plugin, with which arguments, and
  what it returned (logger ``framework.plugins``, level INFO).
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import pluggy

from framework import hookspecs
from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.data.checks import QualityCheck
    from framework.evaluation.types import Metric
    from framework.modality import Modality

log = logging.getLogger(__name__)

DISABLE_ENV = "FRAMEWORK_DISABLE_PLUGINS"
TRACE_ENV = "FRAMEWORK_TRACE_PLUGINS"


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
    trace: bool = field(default_factory=lambda: bool(os.environ.get(TRACE_ENV)))  # log every hook call

    @classmethod
    def from_manager(cls, pm: pluggy.PluginManager) -> "Plugins":
        """Wrap an already-populated plugin manager (used by tests and the contract kit)."""
        pm.check_pending()
        return cls(pm=pm)

    def _call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Every implementation's result, in pluggy's calling order (last registered first)."""
        return [self._traced(impl, hook_name, kwargs) for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls())]

    def _traced(self, impl: Any, hook_name: str, kwargs: Mapping[str, Any]) -> Any:
        accepted = {k: v for k, v in kwargs.items() if k in impl.argnames}
        result = impl.function(**accepted)
        if self.trace:
            args = ", ".join(f"{k}={_short(v)}" for k, v in accepted.items())
            log.info("hook %s(%s) in %s -> %s", hook_name, args, self._describe(impl.plugin_name), _short(result))
        return result

    # --- registration -------------------------------------------------------------------

    def modalities(self) -> dict[str, "Modality"]:
        """Every installed modality by name; two plugins claiming one name is an error."""
        found: dict[str, tuple[str, Modality]] = {}
        for impl in self.pm.hook.framework_modalities.get_hookimpls():
            for modality in self._traced(impl, "framework_modalities", {}) or []:
                owner = self._describe(impl.plugin_name)
                if modality.name in found:
                    other = found[modality.name][0]
                    raise FrameworkError(
                        f"modality {modality.name!r} is registered twice: by {other} and by {owner}. "
                        f"Uninstall one, or block it with {DISABLE_ENV}=<plugin name>."
                    )
                found[modality.name] = (owner, modality)
        return {name: pair[1] for name, pair in sorted(found.items())}

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
        # An observer's bug must not end a training run: report it and carry on with the others.
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            try:
                self._traced(impl, hook_name, kwargs)
            except Exception:  # noqa: BLE001 - deliberately broad, see above
                log.error("plugin %s failed in %s:\n%s", self._describe(impl.plugin_name), hook_name,
                          traceback.format_exc())

    # --- description --------------------------------------------------------------------

    def describe(self) -> list[PluginInfo]:
        """Loaded plugins with their package and the modalities each provides."""
        per_plugin: dict[str, list[Any]] = {}
        for impl in self.pm.hook.framework_modalities.get_hookimpls():
            per_plugin[impl.plugin_name] = list(self._traced(impl, "framework_modalities", {}) or [])
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
    skipped instead. ``extra`` registers plugin objects directly (tests, notebooks).
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
    return plugins


def _builtins_last(ep: EntryPoint) -> tuple[int, str]:
    # pluggy calls later registrations first, so registering built-ins first makes them run last:
    # an outside plugin can then override a built-in's first-result hooks.
    return (0 if ep.value.startswith("plugins.") else 1, ep.name)


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
