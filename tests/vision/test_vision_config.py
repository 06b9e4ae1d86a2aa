"""The shipped configs bind to the schemas, models build from them, and the plugin honours the contract."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

import plugins.vision.plugin as vision_plugin
from framework.data.config import DataConfig
from framework.errors import FrameworkError
from framework.training import TrainerConfig
from framework.media.augment import build_pipeline
from plugins.vision.checks import ImageModeCheck, ResolutionCheck
from plugins.vision.config import VisionConfig, VisionModelConfig
from plugins.vision.model import build_model, input_spec
from plugins.vision.modality import VisionModality, resolve_root

from vision_fixtures import CONF


def _bind(schema: type, node) -> object:
    # A structured merge raises on any key the dataclass does not have.
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))


def test_shipped_modality_yaml_binds_to_every_schema() -> None:
    shipped = OmegaConf.load(CONF / "modality" / "vision.yaml")
    assert list(shipped.defaults) == [{"/model": "vit"}]
    modality = _bind(VisionConfig, shipped.modality)
    _bind(DataConfig, shipped.data)
    _bind(TrainerConfig, shipped.trainer)
    # Every shipped pipeline builds: training, evaluation and each robustness condition.
    build_pipeline(modality.augment, (32, 32), "modality.augment")
    for name, spec in modality.robustness.items():
        assert len(build_pipeline(spec, (32, 32), f"modality.robustness.{name}", default_p=1.0).transforms) == 1


@pytest.mark.parametrize("group", ["vit", "efficientnet"])
def test_shipped_model_groups_build_offline(group: str) -> None:
    cfg = _bind(VisionModelConfig, OmegaConf.load(CONF / "model" / f"{group}.yaml"))
    assert cfg.pretrained is False
    model = build_model(cfg, num_classes=7)
    spec = input_spec(cfg)
    assert spec.size == (32, 32)
    import torch

    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 3, *spec.size)).shape == (2, 7)


def test_input_normalisation_comes_from_the_model() -> None:
    vit = input_spec(VisionModelConfig(name="vit_tiny_patch16_224", image_size=16))
    effnet = input_spec(VisionModelConfig(name="efficientnet_b0"))
    assert vit.mean == (0.5, 0.5, 0.5) and vit.size == (16, 16)
    assert effnet.mean == pytest.approx((0.485, 0.456, 0.406)) and effnet.size == (224, 224)


def test_unknown_model_name_is_a_clear_error() -> None:
    with pytest.raises(FrameworkError, match="model.name='vit_tinny_patch16_224' is not a timm model"):
        build_model(VisionModelConfig(name="vit_tinny_patch16_224"), 3)


def test_missing_checkpoint_file_is_a_clear_error(tmp_path) -> None:
    cfg = VisionModelConfig(name="vit_tiny_patch16_224", checkpoint_path=str(tmp_path / "nope.safetensors"))
    with pytest.raises(FrameworkError, match="does not exist"):
        build_model(cfg, 3)


def test_typo_in_modality_config_names_valid_keys() -> None:
    with pytest.raises(Exception, match="label_smothing"):
        _bind(VisionConfig, {"label_smothing": 0.1})


def test_relative_data_root_falls_back_to_the_repository(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = resolve_root("examples/data/digits")
    assert root.is_absolute() and (root / "train" / "7").is_dir()
    (tmp_path / "mine").mkdir()
    assert resolve_root("mine") == tmp_path / "mine"


def test_hooks() -> None:
    [modality] = vision_plugin.framework_modalities()
    assert isinstance(modality, VisionModality) and modality.name == "vision"
    assert modality.sections == {"modality": VisionConfig, "model": VisionModelConfig}
    assert vision_plugin.framework_config_search_path() == ["pkg://plugins.vision.conf"]
    checks = vision_plugin.framework_quality_checks(modality="vision")
    assert [type(c) for c in checks] == [ImageModeCheck, ResolutionCheck]
    assert vision_plugin.framework_quality_checks(modality="speech") == []


def test_plugin_contract() -> None:
    from framework.testing import contract_problems

    assert contract_problems(vision_plugin) == []


def test_choosing_another_model_drops_the_default_shrinking_and_null_kwargs_clear() -> None:
    from framework.media import timm_kwargs
    from framework.testing import compose

    default = compose(["+modality=vision"]).model
    assert timm_kwargs(default)["patch_size"] == 8  # the tiny ViT
    other = compose(["+modality=vision", "model.name=resnet18"]).model
    assert timm_kwargs(other) == {}  # nothing of the tiny ViT's arguments follows the new name
    mine = compose(["+modality=vision", "model.name=resnet18", "++model.kwargs.drop_rate=0.1"]).model
    assert timm_kwargs(mine) == {"drop_rate": 0.1}
    tweaked = compose(["+modality=vision", "++model.kwargs.depth=1"]).model
    assert timm_kwargs(tweaked)["depth"] == 1 and timm_kwargs(tweaked)["patch_size"] == 8
    cleared = compose(["+modality=vision", "model.kwargs=null", "model.kwargs_by_name=null"]).model
    assert timm_kwargs(cleared) == {}
    small = _bind(VisionModelConfig, compose(["+modality=vision", "model.name=resnet10t"]).model)
    import torch

    with torch.no_grad():  # resnet10t at the default 32 px: no argument meant for the ViT reaches it
        assert build_model(small, num_classes=3).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_the_classifier_exports_to_onnx_and_matches_under_onnxruntime(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (the real extra)")
    pytest.importorskip("onnx", reason="needs onnx (the real extra)")
    import numpy as np
    import torch

    from plugins.vision.export import export_onnx_model
    from plugins.vision.task import ImageClassificationTask
    from vision_fixtures import TINY_VIT

    cfg = _bind(VisionModelConfig, TINY_VIT)
    task = ImageClassificationTask(build_model(cfg, num_classes=3), ["a", "b", "c"], input_spec(cfg)).eval()
    path = export_onnx_model(task, tmp_path / "model.onnx")
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        ours = torch.softmax(task.logits(images), dim=-1).numpy()
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images.numpy()})[0]
    assert theirs.shape == (5, 3) and np.abs(theirs - ours).max() < 1e-4
