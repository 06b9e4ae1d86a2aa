"""Plugin discovery, failure isolation, duplicate names, hook validation and blocking."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint

import pytest

import framework.plugins as plugins_module
from framework import hookimpl
from framework.errors import FrameworkError
from framework.plugins import load_plugins
from framework_tabular.plugin import TabularModality


def test_entry_points_discover_builtin_and_example_plugins() -> None:
    plugins = load_plugins()
    modalities = plugins.modalities()
    assert "tabular" in modalities  # the out-of-tree example package
    assert "vision" in modalities  # a built-in, registered through the same entry-point group
    packages = {info.name: info.package for info in plugins.describe()}
    assert packages["tabular"] == "framework-tabular"
    assert packages["vision"] == "framework"
    assert "pkg://framework_tabular.conf" in plugins.config_search_path()


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


def test_failing_observer_does_not_stop_the_others(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    from framework.hookspecs import RunInfo

    recorder = _RecordingObserver()
    plugins = load_plugins(extra=[recorder, _FailingObserver()])
    with caplog.at_level(logging.ERROR):
        plugins.run_start(RunInfo(run_dir=tmp_path, modality="tabular", name="t", config_yaml=""))
    assert recorder.started == 1
    assert "observer bug" in caplog.text
