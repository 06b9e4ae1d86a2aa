"""``plugins/`` and ``examples/`` import only public names, so an outside plugin copying them
depends on nothing that may move: a name in ``framework.__all__``, or in the ``__all__`` of a
public submodule that ``framework._PUBLIC_MODULES`` declares and docs/plugins.md documents. Only
tests may import the test kit."""

from __future__ import annotations

import ast
from importlib import import_module
from pathlib import Path

import pytest

import framework

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("plugins", "examples")
DOCS = ROOT / "docs" / "plugins.md"


def _is_framework(module: str) -> bool:
    return module == "framework" or module.startswith("framework.")


def _is_test_file(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def _homes(namespace: str, name: str) -> set[str]:
    """The modules ``name``, public in ``namespace``, may be imported from: the namespace itself and
    the module that defines it (a re-export through some other internal module does not count)."""
    ns = import_module(namespace)
    if name not in getattr(ns, "__all__", ()):
        return set()
    value = getattr(ns, name)
    defined_in = getattr(ns, "_LAZY", {}).get(name)
    if defined_in is None and (isinstance(value, type) or callable(value)):
        defined_in = getattr(value, "__module__", None)
    return {namespace, defined_in} - {None}


def _private(module: str, name: str | None) -> str | None:
    """Why ``from module import name`` (``import module`` when ``name`` is None) is not public, or None."""
    if name is None:
        return None if module == "framework" or module in framework._PUBLIC_MODULES else f"module {module} is internal"
    if f"{module}.{name}" in framework._PUBLIC_MODULES:
        return None  # from framework.testing import ddp
    if module == "framework":
        return None if name in framework.__all__ else f"framework.{name} is not in framework.__all__"
    if module in framework._PUBLIC_MODULES:
        return None if name in import_module(module).__all__ else f"{name} is not in {module}.__all__"
    if any(module in _homes(ns, name) for ns in ("framework", *framework._PUBLIC_MODULES)):
        return None  # a public name, imported from the module that defines it
    return (f"{module}.{name} is internal: import a name of framework.__all__ or of a public module's __all__ "
            "(docs/plugins.md, The public API)")


def import_problems(source: str, where: str, *, test_file: bool = False) -> list[str]:
    """``where:line: ...`` for every import of ``source`` that reaches past the public API."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found = [(a.name, None) for a in node.names if _is_framework(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_framework(node.module or ""):
            found = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in found:
            full = module if name is None else f"{module}.{name}"
            if not test_file and any(full == kit or full.startswith(kit + ".") for kit in framework._TEST_KIT):
                problems.append(f"{where}:{node.lineno}: production code imports the test kit ({full})")
                continue
            why = _private(module, name)
            if why:
                problems.append(f"{where}:{node.lineno}: {why}")
    return problems


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))


def test_plugins_and_examples_import_only_public_names() -> None:
    problems = [p for path in _sources() for p in import_problems(
        path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), test_file=_is_test_file(path))]
    assert not problems, "imports past the public API:\n" + "\n".join(problems)


@pytest.mark.parametrize("line", [
    "from framework.data.audit_card import render_datacard",
    "from framework.training.engine import TrainState",
    "import framework.data.dedup",
    "from framework.media.images import RESIZE_MODES as modes, STATS_SIDE",
    "from framework.evaluation import success",
    "from framework import Stage",
    "from framework.media import images",
    "from framework.testing import compose",
    "from framework.data.audit_card import jsonable",      # public, but re-exported by an internal module
    "from framework.training.engine import Engine",        # public from framework.training, not from here
])
def test_a_private_import_is_reported(line: str) -> None:
    assert import_problems(line, "plugins/mine.py"), line


@pytest.mark.parametrize("line", [
    "from framework import Record, hookimpl",
    "from framework.data.records import Record",           # a public name from its defining module
    "from framework.training.checkpoint import export_weights",
    "from framework.media import ImageStore, build_pipeline",
    "from framework.media.images import ImageStore",
    "from framework.evaluation import classification as cls_eval",
    "import framework",
    "from framework_tabular.data import FORMAT",           # another package that starts with the name
])
def test_a_public_import_passes(line: str) -> None:
    assert import_problems(line, "plugins/mine.py") == []


def test_only_tests_import_the_test_kit() -> None:
    line = "from framework.testing.ddp import spawn"
    assert import_problems(line, "tests/test_mine.py", test_file=True) == []
    assert "test kit" in import_problems(line, "plugins/mine.py")[0]


@pytest.mark.parametrize("module", sorted(framework._PUBLIC_MODULES))
def test_every_public_module_and_name_is_documented(module: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert f"`{module}`" in text, f"{module} is declared public but docs/plugins.md does not name it"
    names = import_module(module).__all__
    missing = [n for n in names if f"`{n}`" not in text and f"`{n}(" not in text]
    assert not missing, f"{module}.__all__ names not documented in docs/plugins.md: {missing}"
    unresolved = [n for n in names if not hasattr(import_module(module), n)]
    assert not unresolved, f"{module}.__all__ names that do not exist: {unresolved}"


def test_the_test_kit_keeps_compose_and_it_is_the_public_one() -> None:
    from framework.testing import compose

    cfg = compose(["+modality=vision", "seed=7"])
    assert cfg.seed == 7 and cfg.modality.name == "vision"
    assert framework.compose_config(["+modality=vision", "seed=7"]) == cfg
