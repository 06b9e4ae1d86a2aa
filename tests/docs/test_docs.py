"""Every hook in the contract is documented for plugin authors."""

from __future__ import annotations

import inspect
from pathlib import Path

from framework import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("framework_")]


def test_every_hook_has_a_docstring_saying_when_it_is_called() -> None:
    for name in _hook_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "called" in doc.lower(), f"{name}'s docstring must say when it is called"


def test_every_hook_is_documented_in_docs_plugins_md() -> None:
    text = DOCS.read_text()
    missing = [name for name in _hook_names() if f"`{name}(" not in text]
    assert not missing, f"hooks missing from docs/plugins.md: {missing}"
    assert len(_hook_names()) >= 8
