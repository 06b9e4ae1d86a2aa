"""Documentation belongs to the data: a card in the data root, not sources left in a config."""

from __future__ import annotations

from pathlib import Path

import pytest
from framework.data import DataConfig, DataError
from framework.data.audit import documentation
from framework.data.dataset_card import read_dataset_card
from framework.data.records import DataBundle
from framework.testing import compose, run_framework

REPO = Path(__file__).resolve().parents[2]


WINE = REPO / "examples" / "tabular_plugin" / "framework_tabular" / "data"


def _user_data(root: Path) -> Path:
    """The example's wine CSVs copied without their card: a user's own, undocumented data."""
    root.mkdir()
    for name in ("train.csv", "val.csv", "test.csv"):
        (root / name).write_text((WINE / name).read_text())
    return root


def test_the_bundled_defaults_carry_no_sources_of_their_own() -> None:
    cfg = compose(["+modality=vision"])
    assert list(cfg.data.sources) == []  # nothing that would stay when data.root changes
    assert cfg.data.gates.documentation.require_sources is True
    card = read_dataset_card(REPO / "examples" / "data" / "digits")
    assert card is not None and any("load_digits" in s for s in card.sources)
    bundle = DataBundle(REPO / "examples" / "data" / "digits", {})
    assert documentation(bundle, DataConfig())["sources"] == list(card.sources)


def test_undocumented_user_data_fails_the_documentation_gate_with_a_one_line_fix(tmp_path: Path) -> None:
    root = _user_data(tmp_path / "mine")
    overrides = ["+modality=tabular", f"data.root={root}", "stages=[audit]"]
    refused = run_framework(overrides, tmp_path / "run1")
    assert refused.status == "refused"
    assert [r.name for r in refused.audit.failed_gates()] == ["documentation"]
    summary = refused.audit.result("documentation").summary
    assert "\n" not in summary
    assert f"add {root}/datacard.yaml with 'sources: [" in summary and "data.sources=" in summary
    assert "load_wine" not in (tmp_path / "run1" / "audit" / "datacard.md").read_text()

    (root / "datacard.yaml").write_text('sources: ["photos of a and b, taken by us in 2026"]\nlicense: internal\n')
    passed = run_framework(overrides, tmp_path / "run2")
    assert passed.status == "completed"
    card = (tmp_path / "run2" / "audit" / "datacard.md").read_text()
    assert "photos of a and b, taken by us in 2026" in card and "License: internal" in card


def test_dataset_md_sources_count(tmp_path: Path) -> None:
    (tmp_path / "DATASET.md").write_text("# Shapes\n\nDrawn shapes.\n\n## Sources\n\n- drawn by hand, 2026\n- scanned\n")
    card = read_dataset_card(tmp_path)
    assert card.sources == ("drawn by hand, 2026", "scanned") and card.name == "Shapes"
    assert card.description == "Drawn shapes."


def test_an_unknown_card_key_names_the_file_line_and_valid_keys(tmp_path: Path) -> None:
    (tmp_path / "datacard.yaml").write_text("name: x\nsource: [typo]\n")
    with pytest.raises(DataError, match=r"datacard.yaml:2: unknown key 'source'. Valid keys: name, description, sources"):
        read_dataset_card(tmp_path)
