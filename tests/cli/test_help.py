"""``python -m framework --help``: the project's usage first, then Hydra's config groups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import framework.__main__ as cli

REPO = Path(__file__).resolve().parents[2]


def test_usage_names_the_commands_modalities_and_exit_codes() -> None:
    text = cli.usage()
    assert text.startswith("usage: python -m framework +modality=NAME")
    for expected in ("--plugins", "--compare", "stages=[audit,train,evaluate,export]", "tracking=",
                     "python -m framework.monitoring RUN_DIR BATCH", "python -m framework.monitoring evaluate",
                     "python -m framework.annotation", "export/", "--hydra-help"):
        assert expected in text, expected
    modalities = text.split("Installed modalities")[1].split("Common overrides")[0]
    assert "  vision " in modalities and "  tabular " in modalities  # from the plugin manager, with descriptions
    codes = text.split("Exit codes of python -m framework:")[1]
    assert [line.split()[0] for line in codes.strip().splitlines()] == ["0", "1", "2", "3"]
    assert "not fit to ship" in codes


@pytest.mark.slow
def test_help_prints_the_usage_before_hydras_groups_and_no_config_dump() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "examples" / "tabular_plugin")])}
    result = subprocess.run([sys.executable, "-m", "framework", "--help"], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("usage: python -m framework +modality=NAME")
    assert out.index("Exit codes") < out.index("Config groups (Hydra)") < out.index("tracking: ")
    assert "wandb" in out.split("tracking: ")[1].splitlines()[0]
    assert "powered by Hydra" not in out and "== Config ==" not in out  # the ~200-line config dump is gone
    assert len(out.splitlines()) < 80
