"""What plugin authors meet first: --plugins, misspelled hooks, hook tracing, refused runs."""

from __future__ import annotations

import inspect
import logging
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import framework.plugins as plugins_module
from framework import hookimpl, hookspecs
from framework.errors import FrameworkError
from framework.hookspecs import RunInfo
from framework.plugins import load_plugins
from framework.testing import run_framework

MISSPELLED = '''
from framework import hookimpl

@hookimpl
def framework_quality_check(modality):
    return []
'''


def _add_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins_module.entry_points
    extra = EntryPoint(name=name, value=name, group="framework.plugins")
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [*real(group=group), extra])


def test_plugins_listing_shows_descriptions_and_a_broken_plugin_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from framework.__main__ import _list_plugins

    _add_entry_point(monkeypatch, tmp_path, "typo_plugin", MISSPELLED)
    assert _list_plugins() == 0
    out = capsys.readouterr().out
    assert "modalities: tabular" in out and "      tabular: tabular classification with an MLP" in out
    assert "      vision: image classification" in out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "typo_plugin" in failed[0]
    assert "'framework_quality_check' (did you mean 'framework_quality_checks'?)" in failed[0]
    assert "Traceback" not in out


class _Misspelled:
    @hookimpl
    def framework_metric(self, modality):  # type: ignore[no-untyped-def]
        return []


def test_a_misspelled_hook_offers_the_right_name() -> None:
    with pytest.raises(FrameworkError, match=r"'framework_metric' \(did you mean 'framework_metrics'\?\)"):
        load_plugins(extra=[_Misspelled()])


class _Observer:
    @hookimpl
    def framework_run_start(self, run):  # type: ignore[no-untyped-def]
        pass

    @hookimpl
    def framework_step(self, run, step, metrics):  # type: ignore[no-untyped-def]
        pass

    @hookimpl
    def framework_evaluated(self, run, step, split, metrics):  # type: ignore[no-untyped-def]
        pass

    @hookimpl
    def framework_checkpoint_saved(self, run, step, path):  # type: ignore[no-untyped-def]
        pass

    @hookimpl
    def framework_run_end(self, run, status, metrics):  # type: ignore[no-untyped-def]
        pass

    @hookimpl
    def framework_metrics(self, modality):  # type: ignore[no-untyped-def]
        return []


def test_trace_logs_every_hook_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FRAMEWORK_TRACE_PLUGINS", "1")
    run = RunInfo(run_dir=tmp_path, modality="tabular", name="t", config_yaml="")
    with caplog.at_level(logging.INFO, logger="framework.plugins"):
        plugins = load_plugins(extra=[_Observer()])  # framework_register_readers is called here
        plugins.modalities()
        plugins.config_search_path()
        plugins.quality_checks("tabular")
        plugins.metrics("tabular")
        plugins.run_start(run)
        plugins.step(run, 1, {"loss": 1.0})
        plugins.evaluated(run, 1, "val", {"accuracy": 0.5})
        plugins.checkpoint_saved(run, 1, tmp_path)
        plugins.run_end(run, "completed", {})
    every = [n for n, fn in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("framework_")]
    logged = {n for n in every if f"hook {n}(" in caplog.text}
    assert logged == set(every)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("hook framework_quality_checks("))
    assert line.startswith("hook framework_quality_checks(modality='tabular') in plugin 'tabular' (package 'framework-tabular'), ")
    assert "plugin 'vision' (package 'framework')" in line and "ConstantFeatureCheck" in line.split(" -> ")[1]


def test_run_framework_returns_refused_instead_of_raising(tmp_path: Path) -> None:
    result = run_framework(["+modality=tabular", "stages=[audit]", "data.gates.balance.min_per_class=500"], tmp_path)
    assert result.status == "refused"
    assert [r.name for r in result.audit.failed_gates()] == ["balance"]
    assert "data.gates.balance.min_per_class" in result.message and result.fit_to_ship is None
