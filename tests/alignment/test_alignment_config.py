"""The shipped configs compose and bind to the schemas, and the plugin honours the contract."""

from __future__ import annotations

import pytest

import plugins.alignment.plugin as alignment_plugin
from framework.testing import compose, contract_problems
from plugins.alignment.config import AlignmentConfig, AlignmentModelConfig
from plugins.alignment.misalignment import MisalignmentCheck
from plugins.alignment.modality import AlignmentModality


def test_plugin_contract_and_hooks() -> None:
    assert contract_problems(alignment_plugin) == []
    [modality] = alignment_plugin.framework_modalities()
    assert isinstance(modality, AlignmentModality) and modality.label_type == "text"
    assert modality.sections == {"modality": AlignmentConfig, "model": AlignmentModelConfig}
    [check] = alignment_plugin.framework_quality_checks(modality="alignment")
    assert isinstance(check, MisalignmentCheck) and check.needs_model
    assert alignment_plugin.framework_quality_checks(modality="vision") == []


def test_default_config_composes_with_the_bundled_data_and_tokenizer() -> None:
    cfg = compose(["+modality=alignment"])
    assert cfg.model.text.tokenizer is None  # the bundled tokenizer for the encoder built from config
    mini = compose(["+modality=alignment", "model.text.name=/models/all-MiniLM-L6-v2"])
    assert mini.model.text.tokenizer is None  # the encoder's own: nothing the default set stays behind
    assert cfg.data.root == "examples/data/shapes" and list(cfg.data.slices) == ["size", "position"]
    assert cfg.data.gates.plugins.misalignment.max_suspect_fraction == 0.05


def test_the_clip_model_option_composes_over_the_tiny_defaults() -> None:
    cfg = compose(["+modality=alignment", "model=dual_clip", "model.clip=/models/my-clip"])
    assert cfg.model.clip == "/models/my-clip" and cfg.model.text.tokenizer is None
    assert cfg.model.text.max_length == 77 and cfg.model.embed_dim == 64


@pytest.mark.slow
def test_a_typo_in_the_model_node_names_the_valid_keys(cli) -> None:
    result = cli("+modality=alignment", "model.freeze_txt=true", "stages=[audit]")
    assert result.returncode == 2
    assert "Did you mean 'freeze_text'?" in result.stderr and "embed_dim" in result.stderr


def test_a_typo_in_the_misalignment_settings_stops_the_audit(tmp_path) -> None:
    from framework.data.checks import SettingsError
    from framework.data.checks import CheckContext
    from framework.data.records import DataBundle

    ctx = CheckContext("alignment", {"better_margn": 0.2}, (), tmp_path, model=None)
    with pytest.raises(SettingsError, match="better_margin"):
        MisalignmentCheck().run(DataBundle(tmp_path, {}), ctx)
