"""Plugin discovery, failure isolation, duplicate names, hook validation and blocking."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint

import pytest

import framework.plugins as plugins_module
from framework import hookimpl
from framework.errors import FrameworkError
from framework.plugins import is_builtin, load_plugins
from framework_tabular.plugin import TabularModality


def test_entry_points_discover_builtin_and_example_plugins() -> None:
    plugins = load_plugins()
    modalities = plugins.modalities()
    assert "tabular" in modalities  # the out-of-tree example package
    assert "vision" in modalities  # a built-in, registered through the same entry-point group
    packages = {info.name: info.package for info in plugins.describe()}
    assert packages["tabular"] == "framework-tabular"
    assert packages["vision"] == "framework"
    assert plugins.config_search_path()[0] == "pkg://framework_tabular.conf"  # outside plugins before built-ins


def test_builtins_are_recognised_by_their_distribution_not_their_module_name() -> None:
    installed = {ep.name: ep for ep in plugins_module.entry_points(group="framework.plugins")}
    assert is_builtin(installed["vision"]) and is_builtin(installed["text"])
    assert not is_builtin(installed["tabular"])
    # An outside package whose module happens to be called plugins.* is not a built-in.
    impostor = EntryPoint(name="impostor", value="plugins.impostor.plugin", group="framework.plugins")
    assert not is_builtin(impostor)
    assert plugins_module._builtins_last(impostor) > plugins_module._builtins_last(installed["vision"])


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, *extra: EntryPoint) -> None:
    real = plugins_module.entry_points

    def fake(group: str):  # type: ignore[no-untyped-def]
        return list(real(group=group)) + [ep for ep in extra if ep.group == group]

    monkeypatch.setattr(plugins_module, "entry_points", fake)


def test_broken_plugin_is_reported_and_skipped(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broken = EntryPoint(name="broken", value="no_such_module_anywhere.plugin", group="framework.plugins")
    _with_entry_points(monkeypatch, broken)
    with caplog.at_level(logging.WARNING):
        plugins = load_plugins()
    assert [f.name for f in plugins.failures] == ["broken"]
    assert "ModuleNotFoundError" in plugins.failures[0].error
    assert "broken" in caplog.text
    assert "tabular" in plugins.modalities()  # the others still load


class _Duplicate:
    @hookimpl
    def framework_modalities(self):  # type: ignore[no-untyped-def]
        return [TabularModality()]


def test_duplicate_modality_name_names_both_plugins() -> None:
    plugins = load_plugins(extra=[_Duplicate()])
    with pytest.raises(FrameworkError) as info:
        plugins.modalities()
    message = str(info.value)
    assert "'tabular' is registered twice" in message
    assert "framework-tabular" in message and "_Duplicate" in message


class _Misspelled:
    @hookimpl
    def framework_modalitys(self):  # type: ignore[no-untyped-def]
        return []


class _WrongSignature:
    @hookimpl
    def framework_quality_checks(self, modality, colour):  # type: ignore[no-untyped-def]
        return []


def test_misspelled_hook_fails_fast() -> None:
    with pytest.raises(FrameworkError, match="framework_modalitys"):
        load_plugins(extra=[_Misspelled()])


def test_wrong_hook_signature_fails_fast() -> None:
    with pytest.raises(FrameworkError, match="colour"):
        load_plugins(extra=[_WrongSignature()])


def test_environment_variable_blocks_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEWORK_DISABLE_PLUGINS", "tabular")
    plugins = load_plugins()
    assert "tabular" not in plugins.modalities()
    assert "vision" in plugins.modalities()
    with pytest.raises(FrameworkError, match=r"Installed modalities: (\w+, )*vision"):
        plugins.modality("tabular")


class _FailingObserver:
    calls: list[str] = []

    @hookimpl
    def framework_run_start(self, run):  # type: ignore[no-untyped-def]
        raise RuntimeError("observer bug")


class _RecordingObserver:
    def __init__(self) -> None:
        self.started = 0

    @hookimpl
    def framework_run_start(self, run):  # type: ignore[no-untyped-def]
        self.started += 1


class _WrappingObserver:
    def __init__(self) -> None:
        self.wrapped = 0

    @hookimpl(wrapper=True)
    def framework_run_start(self, run):  # type: ignore[no-untyped-def]
        self.wrapped += 1
        return (yield)


def test_failing_observer_does_not_stop_the_others(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    from framework.hookspecs import RunInfo

    first, last, wrapper = _RecordingObserver(), _RecordingObserver(), _WrappingObserver()
    # pluggy calls the last registered first: `last`, then the failing one, then `first`.
    plugins = load_plugins(extra=[first, _FailingObserver(), last, wrapper])
    with caplog.at_level(logging.ERROR):
        plugins.run_start(RunInfo(run_dir=tmp_path, modality="tabular", name="t", config_yaml=""))
    assert (first.started, last.started) == (1, 1)  # each observer exactly once, failure or not
    assert wrapper.wrapped == 2  # around the first call, and around the call for those not yet called
    assert "observer bug" in caplog.text
    assert "plugin '_FailingObserver' failed in framework_run_start" in caplog.text


@dataclass
class _UnhashableFailingObserver:  # a dataclass instance (eq without frozen) has no hash
    label: str = "x"

    @hookimpl
    def framework_run_start(self, run):  # type: ignore[no-untyped-def]
        raise RuntimeError("dataclass observer bug")


def test_a_failing_unhashable_observer_is_reported_not_raised(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    from framework.hookspecs import RunInfo

    plugins = load_plugins(extra=[_UnhashableFailingObserver()])
    with caplog.at_level(logging.ERROR):
        plugins.run_start(RunInfo(run_dir=tmp_path, modality="tabular", name="t", config_yaml=""))
    assert "plugin '_UnhashableFailingObserver' failed in framework_run_start" in caplog.text


class _Metric:
    def __init__(self, name: str) -> None:
        self.name = name

    def compute(self, predictions):  # type: ignore[no-untyped-def]
        return {self.name: 1.0}


class _MetricPlugin:
    @hookimpl
    def framework_metrics(self, modality):  # type: ignore[no-untyped-def]
        return [_Metric("plain"), _Metric("noisy")]


class _MetricWrapper:
    """A new-style wrapper (pluggy's ``wrapper=True``): sees every plugin's metrics, edits the list."""

    @hookimpl(wrapper=True)
    def framework_metrics(self, modality):  # type: ignore[no-untyped-def]
        contributed = yield
        kept = [[m for m in metrics if m.name != "noisy"] for metrics in contributed]
        return [*kept, [_Metric(f"wrapped_{modality}")]]


def test_a_wrapper_hookimpl_of_a_contribution_hook_wraps_every_plugins_result() -> None:
    plugins = load_plugins(extra=[_MetricPlugin(), _MetricWrapper()])
    assert [m.name for m in plugins.metrics("tabular")] == ["plain", "wrapped_tabular"]


class _BrokenMetrics:
    @hookimpl
    def framework_metrics(self, modality):  # type: ignore[no-untyped-def]
        raise RuntimeError("metric bug")


def test_an_exception_in_a_contribution_hook_names_the_plugin() -> None:
    plugins = load_plugins(extra=[_BrokenMetrics(), _MetricWrapper()])  # the wrapper re-raises; it is not blamed
    with pytest.raises(RuntimeError, match="metric bug") as info:
        plugins.metrics("tabular")
    assert info.value.__notes__ == ["raised in framework_metrics by plugin '_BrokenMetrics'"]


def test_trace_logs_calls_through_pluggy_monitoring(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FRAMEWORK_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.INFO, logger="framework.plugins"):
        plugins = load_plugins(extra=[_MetricPlugin(), _MetricWrapper()])
        plugins.metrics("vision")
        with pytest.raises(RuntimeError):
            load_plugins(extra=[_BrokenMetrics()]).metrics("vision")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hook framework_metrics(")]
    assert lines[0].startswith("hook framework_metrics(modality='vision') in plugin '_MetricWrapper', plugin '_MetricPlugin'")
    assert lines[0].split(" -> ")[1].count("_Metric object at") == 2  # what the wrapper returned: plain, wrapped
    assert lines[1].endswith("raised RuntimeError('metric bug')")
    assert any(m.startswith("hook framework_register_readers(registry=ReaderRegistry([") for m in caplog.messages)
