"""Renamed modules keep their old paths for one release: the same module, with a DeprecationWarning
that names the new path."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

MOVED = [
    ("framework.annotation.review", "framework.annotation.review_tasks", "export_review_tasks"),
    ("framework.monitoring.review", "framework.monitoring.review_sample", "review_sample"),
    ("framework.data.datacard", "framework.data.audit_card", "render_datacard"),
    ("plugins.data_root", "plugins._bundled", "resolve_root"),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_an_old_path_warns_and_gives_the_new_module(old: str, new: str, name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    [warning] = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert old in str(warning.message) and f"import {new} instead" in str(warning.message)


def test_new_paths_import_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for _, new, _ in MOVED:
            importlib.import_module(new)
