"""Config composition and the errors a user sees for a wrong config."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from framework.config import conf_dir
from framework.errors import FrameworkError
from framework.instantiate import check_targets, instantiate
from framework.plugins import load_plugins
from framework.testing import compose

FAST = ["trainer.max_steps=2", "trainer.progress=false"]


def _group_options(group: str, search: list[Path]) -> list[str]:
    return sorted({p.stem for root in search for p in (root / group).glob("*.yaml")})


def _plugin_conf_dirs() -> list[Path]:
    dirs = []
    for entry in load_plugins().config_search_path():
        package = entry.removeprefix("pkg://")
        spec = importlib.util.find_spec(package)
        assert spec and spec.submodule_search_locations, entry
        dirs.append(Path(list(spec.submodule_search_locations)[0]))
    return dirs


@pytest.mark.slow
def test_every_shipped_config_composes() -> None:
    plugin_dirs = _plugin_conf_dirs()
    modalities = _group_options("modality", plugin_dirs)
    assert {"tabular", "vision"} <= set(modalities)
    for modality in modalities:
        cfg = compose([f"+modality={modality}"])
        # A variant config (text_dpo) selects its modality under a longer name.
        assert cfg.modality.name == modality or modality.startswith(f"{cfg.modality.name}_")
    for model in _group_options("model", plugin_dirs):
        owner = next(m for m in modalities if (_owner_dir(model, plugin_dirs) / "modality" / f"{m}.yaml").exists())
        assert compose([f"+modality={owner}", f"model={model}"]).model  # a non-empty node: a name, or dims to build from
    for tracking in _group_options("tracking", [conf_dir()]):
        assert "jsonl" in compose(["+modality=tabular", f"tracking={tracking}"]).tracking.backends


def _owner_dir(model: str, dirs: list[Path]) -> Path:
    return next(d for d in dirs if (d / "model" / f"{model}.yaml").exists())


@pytest.mark.parametrize(("group", "option", "package"), [
    ("hydra/sweeper", "optuna_example", "hydra_plugins.hydra_optuna_sweeper"),
    ("hydra/launcher", "submitit_slurm_example", "hydra_plugins.hydra_submitit_launcher"),
])
def test_sweeper_and_launcher_examples_compose(group: str, option: str, package: str) -> None:
    assert (conf_dir() / group / f"{option}.yaml").is_file()
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} not installed (pip install 'framework[sweepers]')")
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["+modality=tabular", f"{group}={option}"], return_hydra_config=True)
    assert cfg.hydra


@pytest.mark.slow
def test_unknown_key_names_the_valid_keys(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", "trainer.lrr=0.1")
    assert result.returncode == 2, result.stderr
    assert "unknown config key 'trainer.lrr'" in result.stderr
    assert "Valid keys:" in result.stderr and "warmup_ratio" in result.stderr
    assert "Did you mean 'lr'?" in result.stderr


@pytest.mark.slow
def test_unknown_key_in_a_modality_section_names_its_schema_keys(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", "model.hiden=[8]")
    assert result.returncode == 2, result.stderr
    assert "MLPConfig" in result.stderr and "Did you mean 'hidden'?" in result.stderr


@pytest.mark.slow
def test_unknown_modality_lists_the_installed_ones(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=speeech")
    assert result.returncode == 2
    assert "unknown modality 'speeech'" in result.stderr
    assert "tabular" in result.stderr and "vision" in result.stderr


@pytest.mark.slow
def test_missing_modality_says_how_to_choose_one(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli()
    assert result.returncode == 2
    assert "+modality=NAME" in result.stderr and "tabular" in result.stderr


@pytest.mark.slow
def test_refused_target_in_config(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", "+callbacks.evil._target_=os.system", "+callbacks.evil.command=touch pwned")
    assert result.returncode == 2, result.stderr
    assert "refused _target_ 'os.system'" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_target_policy_allows_core_classes_and_listed_packages() -> None:
    cfg = compose(["+modality=tabular", "+callbacks.ok._target_=framework.tracking.jsonl_tracker.JsonlTracker"])
    check_targets(cfg)
    with pytest.raises(FrameworkError, match="builtins.eval"):
        instantiate({"_target_": "builtins.eval", "_args_": ["1+1"]})
    assert instantiate({"_target_": "collections.OrderedDict"}, extra=["collections"]) == {}


def test_malformed_success_threshold_is_explained(tmp_path: Path) -> None:
    from framework.testing import run_framework

    with pytest.raises(FrameworkError, match="success.accuracy"):
        run_framework(["+modality=tabular", "success.accuracy=high", *FAST], tmp_path)


@pytest.mark.parametrize(("path", "where", "bad", "suggestion"), [
    ("trainr.lr", "the top level", "trainr", "trainer"),
    ("trainer.early_stopping.patince", "trainer.early_stopping", "patince", "patience"),
    ("data.gates.balance.min_per_clas", "data.gates.balance", "min_per_clas", "min_per_class"),
    ("model.hiden", "model", "hiden", "hidden"),
])
def test_the_first_unknown_segment_is_named_with_its_valid_keys(path: str, where: str, bad: str, suggestion: str) -> None:
    from framework.config import locate_unknown
    from framework_tabular.plugin import TabularModality

    found = locate_unknown(path, TabularModality.sections)
    assert found is not None
    assert (found[0], found[2]) == (where, bad)
    assert suggestion in found[3]


@pytest.mark.slow
def test_unknown_gate_setting_on_the_command_line(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", "data.gates.balance.min_per_clas=3")
    assert result.returncode == 2
    assert "Did you mean 'min_per_class'?" in result.stderr
