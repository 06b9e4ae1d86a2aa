"""Config is data: every `_target_` bypass reproduced on the earlier string-prefix policy is refused."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from framework.errors import FrameworkError
from framework.instantiate import check_allowed_targets, check_targets, event_observer, instantiate
from framework.testing import compose, run_framework

AUDIT = ["+modality=tabular", "stages=[audit]"]


class _MakesDir:
    """Unpickling this runs os.mkdir(path): what a crafted .pth file does."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.path,))


def test_torch_load_of_a_crafted_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned_by_pickle"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(_MakesDir(str(marker))))
    for extra in ([], ["allowed_targets=[torch]"]):  # even with torch allowed: a function is not a class
        with pytest.raises(FrameworkError, match="refused _target_ 'torch.load'"):
            run_framework([*AUDIT, *extra, "+callbacks.x._target_=torch.load", f"+callbacks.x.f={evil}",
                           "+callbacks.x.weights_only=false"], tmp_path / "run")
    assert not marker.exists()


def test_attribute_chain_through_an_allowed_module_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned_dir"
    with pytest.raises(FrameworkError, match="refused _target_ 'torch.os.mkdir'"):
        run_framework([*AUDIT, "allowed_targets=[torch]", "+callbacks.x._target_=torch.os.mkdir",
                       f"+callbacks.x._args_=[{target}]"], tmp_path / "run")
    with pytest.raises(FrameworkError, match="defined outside the allowed packages"):
        # a class re-exported by an allowed module is judged by where it is defined
        instantiate({"_target_": "framework.app.Path", "_args_": [str(target)]})
    assert not target.exists()


def test_a_target_inside_an_interpolation_is_checked_after_resolving(tmp_path: Path) -> None:
    target = tmp_path / "pwned_by_interpolation"
    node = OmegaConf.create({
        "_target_": "framework.tracking.jsonl_tracker.JsonlTracker",
        "_args_": ["${oc.create:{_target_: os.mkdir, _args_: [" + str(target) + "]}}"],
    })
    with pytest.raises(FrameworkError, match="refused _target_ 'os.mkdir'"):
        instantiate(node)
    cfg = OmegaConf.create({"callbacks": {"x": "${oc.create:{_target_: os.mkdir, _args_: [" + str(target) + "]}}"}})
    with pytest.raises(FrameworkError, match="refused _target_ 'os.mkdir' at callbacks.x"):
        check_targets(cfg)
    assert not target.exists()


def test_hydra_callbacks_are_limited_before_hydra_builds_them(tmp_path: Path) -> None:
    from framework.__main__ import _vet_before_hydra
    from framework.config import register_configs

    target = tmp_path / "pwned_dir"
    register_configs()
    with pytest.raises(FrameworkError, match="refused _target_ 'os.mkdir' at hydra.callbacks.x"):
        _vet_before_hydra([*AUDIT, "+hydra.callbacks.x._target_=os.mkdir", f"+hydra.callbacks.x._args_=[{target}]"])
    assert _vet_before_hydra(["-m", *AUDIT]) == []  # the framework's own SweepSummary is fine
    assert not target.exists()


def test_callbacks_must_be_event_observers_and_allowed_targets_come_from_the_command_line() -> None:
    with pytest.raises(FrameworkError, match="implements no framework_\\* event hook"):
        instantiate({"_target_": "framework.training.TrainerConfig"}, kind=event_observer)
    with pytest.raises(FrameworkError, match="not the command line"):
        check_allowed_targets(["os"], overrides=["+modality=tabular"])
    assert check_allowed_targets(["my_pkg"], overrides=["allowed_targets=[my_pkg]"]) == ["my_pkg"]
    cfg = compose([*AUDIT, "+callbacks.ok._target_=framework.tracking.jsonl_tracker.JsonlTracker"])
    check_targets(cfg)  # the framework's own observers are fine
