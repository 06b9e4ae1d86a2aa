"""Config errors a plugin author or user meets: group options, thresholds, parse errors, check settings."""

from __future__ import annotations

import sys

import pytest

import framework.__main__ as cli
from framework.testing import compose


def _message(overrides: list[str]) -> str:
    with pytest.raises(Exception) as info:
        compose(overrides)
    message = cli._friendly(info.value)
    assert message is not None, f"{type(info.value).__name__} would print a traceback"
    assert "\n" not in message
    return message


def test_an_unknown_group_option_names_the_group_option_and_valid_options() -> None:
    message = _message(["+modality=vision", "model=vitt"])
    assert "config group 'model' has no option 'vitt'" in message
    assert "Valid options: " in message and "vit" in message and "efficientnet" in message
    assert "Did you mean model=vit?" in message
    assert "unknown modality" not in message
    assert "unknown modality 'visoin'" in _message(["+modality=visoin"])
    assert "Did you mean +modality=vision?" in _message(["+modality=visoin"])  # the form that works


def test_a_modality_without_the_plus_says_to_add_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["framework", "modality=vision"])
    message = _message(["modality=vision"])
    assert message.startswith("select a modality with +modality=vision (the + is needed")
    assert "vision" in message.split("Installed modalities:")[1]


def test_documented_threshold_overrides_work() -> None:
    assert compose(["+modality=vision", "+success.accuracy=>=0.9"]).success.accuracy == ">=0.9"
    cfg = compose(["+modality=vision", "+success.macro_f1=>=0.85", "success.min_class_recall=<=0.99"])
    assert cfg.success.macro_f1 == ">=0.85" and cfg.success.min_class_recall == "<=0.99"


def test_the_command_line_rewrites_thresholds_before_hydra(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(sys, "argv", ["framework", "+modality=vision", "+success.accuracy=>=0.9"])
    monkeypatch.setattr(cli, "_hydra_main", lambda: seen.extend(sys.argv[1:]))
    cli.main()
    assert seen == ["+modality=vision", "++success.accuracy='>=0.9'"]


def test_an_override_parse_error_is_one_line_with_a_hint(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    message = _message(["+modality=vision", "trainer.lr=[1"])
    assert message.startswith("cannot parse the override 'trainer.lr=[1'") and "Quote values" in message
    monkeypatch.setattr(sys, "argv", ["framework", "+modality=vision", "trainer.lr=[1"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot parse the override") and len(err.splitlines()) == 1


def test_plugin_check_settings_are_registered_with_their_defaults() -> None:
    cfg = compose(["+modality=vision", "data.gates.plugins.image_resolution.min_side=4"])  # no `+` needed
    assert cfg.data.gates.plugins.image_resolution.min_side == 4
    assert cfg.data.gates.plugins.image_resolution.max_size_ratio == 4.0  # the check's own default
    message = _message(["+modality=vision", "data.gates.plugins.image_resolution.min_sid=4"])
    assert "'min_sid' is not a setting of data.gates.plugins.image_resolution" in message
    assert "Valid keys: min_side, max_size_ratio, max_aspect_deviation, max_outlier_fraction, gate" in message
    assert "Did you mean 'min_side'?" in message
