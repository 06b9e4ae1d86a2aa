"""A config file, a config dir or a sweep someone else wrote must not run code (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from framework.errors import FrameworkError
from framework.instantiate import check_hydra_config, check_remote_code

AUDIT = ["+modality=tabular", "stages=[audit]"]

EVIL = """# @package _global_
hydra:
  {key}:
    handlers:
      evil:
        '()': shutil.copyfile
        src: payload.py
        dst: whisper.py
    root:
      handlers: [evil]
"""


def _config_dir(tmp_path: Path, key: str = "job_logging") -> Path:
    (tmp_path / "payload.py").write_text("print('pwned')\n")
    folder = tmp_path / "cd" / "experiment"
    folder.mkdir(parents=True)
    (folder / "evil.yaml").write_text(EVIL.format(key=key))
    (folder / "ok.yaml").write_text("# @package _global_\nseed: 1\n")
    return tmp_path / "cd"


def _refused(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().count("\n") == 0, result.stderr[-2000:]
    assert "refused '()' 'shutil.copyfile' at hydra." in result.stderr
    assert not (tmp_path / "whisper.py").exists()


def test_a_logging_handler_from_a_config_dir_experiment_is_refused_before_it_runs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _config_dir(tmp_path)
    _refused(cli("--config-dir", str(folder), "+experiment=evil", *AUDIT), tmp_path)


def test_a_logging_handler_in_one_job_of_a_sweep_is_refused_before_any_job(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _config_dir(tmp_path, "hydra_logging")
    _refused(cli("-m", "--config-dir", str(folder), "+experiment=ok,evil", *AUDIT), tmp_path)
    assert not (tmp_path / "multirun").exists()  # no job ran


def test_every_place_the_hydra_node_names_code_is_checked() -> None:
    refused = {
        "class 'shutil.copyfile'": {"job_logging": {"handlers": {"e": {"class": "shutil.copyfile"}}}},
        "filename 'x.pth'": {"job_logging": {"handlers": {"e": {"class": "logging.FileHandler", "filename": "x.pth"}}}},
        "may name a factory only": {"hydra_logging": {"handlers": {"q": {"class": "logging.handlers.QueueHandler",
                                                                         "queue": {"()": "builtins.open"}}}}},
        "ext://": {"job_logging": {"handlers": {"e": {"class": "logging.StreamHandler", "stream": "ext://os.system"}}}},
        "installed Hydra plugin": {"launcher": {"_target_": "os.system"}},
        "'subprocess.Popen' at hydra.sweeper.sampler": {"sweeper": {"_target_": "hydra_plugins.x.Y",
                                                                    "sampler": {"_target_": "subprocess.Popen"}}},
        "env_set.LD_PRELOAD": {"job": {"env_set": {"LD_PRELOAD": "/tmp/x.so"}}},
        "'os.mkdir' at hydra.callbacks.x": {"callbacks": {"x": {"_target_": "os.mkdir"}}},
        "formatters.f": {"job_logging": {"formatters": {"f": {"()": "framework.training.TrainerConfig"}}}},
    }
    for match, node in refused.items():
        with pytest.raises(FrameworkError, match=match.replace("(", r"\(").replace(")", r"\)")):
            check_hydra_config(OmegaConf.create(node))
    check_hydra_config(OmegaConf.create({  # Hydra's defaults and the framework's run.log
        "job_logging": {"version": 1, "formatters": {"simple": {"format": "%(message)s"}},
                        "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
                                     "file": {"class": "logging.FileHandler", "filename": "/r/run.log"}}},
        "launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
        "callbacks": {"s": {"_target_": "framework.sweep.SweepSummary"}}}))


def test_the_entry_point_uses_no_private_hydra_api() -> None:
    import framework.__main__ as entry

    assert "hydra._internal" not in Path(entry.__file__).read_text()


def test_trust_remote_code_from_a_config_file_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = OmegaConf.create({"model": {"trust_remote_code": True}})
    with pytest.raises(FrameworkError, match="comes from a config file, not the command line"):
        check_remote_code(cfg, overrides=["+modality=text"], environ={})
    check_remote_code(cfg, overrides=["model.trust_remote_code=true"], environ={})
    check_remote_code(cfg, overrides=[], environ={"FRAMEWORK_TRUST_REMOTE_CODE": "1"})
    folder = tmp_path / "cd" / "experiment"
    folder.mkdir(parents=True)
    (folder / "remote.yaml").write_text("# @package _global_\nmodel:\n  trust_remote_code: true\n")
    result = cli("--config-dir", str(tmp_path / "cd"), "+modality=text", "+experiment=remote", "stages=[audit]")
    assert result.returncode == 2 and "model.trust_remote_code: true comes from a config file" in result.stderr, \
        result.stderr[-2000:]
