"""Shared test setup: GPU tests are skipped, and reported as skipped, without a CUDA device."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _fresh_hub_probe():  # type: ignore[no-untyped-def]
    """Each test probes the hub afresh (a run keeps the answer for the process; tests patch the network)."""
    from framework.hub import forget_reachability

    forget_reachability()
    yield
    forget_reachability()


@pytest.fixture
def cli(tmp_path):  # type: ignore[no-untyped-def]
    """Run ``python -m framework ARGS`` in a fresh process, in ``tmp_path``; returns the result."""
    import os
    import subprocess
    import sys

    def run(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("FRAMEWORK_RUN_ID", None)
        return subprocess.run([sys.executable, "-m", "framework", *args], cwd=tmp_path, env=full_env,
                              capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A running Label Studio (tests/label_studio_server.py), started once and shared by every test
    that needs one; skipped with the reason where it cannot start."""
    pytest.importorskip("label_studio_sdk", reason="label-studio-sdk is not installed: pip install '.[labelstudio]'")
    from label_studio_server import start

    yield from start(tmp_path_factory.mktemp("label_studio"))
