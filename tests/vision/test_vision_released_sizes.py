"""Released ViT weights at an input size other than the one they were trained at: loaded from a
local file or a ``local-dir:`` folder, their position embeddings resampled to the new patch grid
(as timm does), not dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugins.vision.config import VisionModelConfig
from plugins.vision.model import build_model, input_spec

pytestmark = pytest.mark.slow  # full-size vit_tiny models (5.7M parameters) built five times

ARCH = "vit_tiny_patch16_224"  # the published architecture: 14x14 patches of 16 px, one class token


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, Path]:
    """A randomly initialised vit_tiny at 224 px standing in for released weights: saved as a
    safetensors file and as a timm folder (``save_for_hf``)."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = timm.create_model(ARCH, pretrained=False)
    out = tmp_path_factory.mktemp("vit")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(out / "vit.safetensors"))
    timm.models.save_for_hf(source, str(out / "folder"))
    return source, out / "vit.safetensors", out / "folder"


def _resampled(source: torch.nn.Module, side: int) -> torch.Tensor:
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(source.pos_embed.detach(), (side // 16, side // 16), num_prefix_tokens=1)


@pytest.mark.parametrize("size, how", [(64, "file"), (96, "local-dir")])
def test_released_vit_weights_load_at_another_size_with_resampled_position_embeddings(
        released: tuple[torch.nn.Module, Path, Path], size: int, how: str) -> None:
    source, file, folder = released
    if how == "file":
        cfg = VisionModelConfig(name=ARCH, checkpoint_path=str(file), image_size=size, kwargs_by_name=None)
    else:
        cfg = VisionModelConfig(name=f"local-dir:{folder}", image_size=size, kwargs_by_name=None)
    assert input_spec(cfg).size == (size, size)
    model = build_model(cfg, num_classes=3).eval()
    grid = size // 16
    assert model.pos_embed.shape == (1, 1 + grid * grid, 192)
    assert torch.allclose(model.pos_embed, _resampled(source, size), atol=1e-6)  # resampled, not re-initialised
    assert torch.equal(model.pos_embed[:, :1], source.pos_embed[:, :1])  # the class token's own is kept
    assert torch.equal(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 3)


def test_the_alignment_image_tower_resamples_released_weights_too(
        released: tuple[torch.nn.Module, Path, Path]) -> None:
    from plugins.alignment.config import ImageTowerConfig
    from plugins.alignment.model import image_tower

    source, file, folder = released
    for cfg in (ImageTowerConfig(name=ARCH, checkpoint_path=str(file), image_size=64, kwargs_by_name=None),
                ImageTowerConfig(name=f"local-dir:{folder}", image_size=64, kwargs_by_name=None)):
        tower, spec = image_tower(cfg)
        assert spec.size == (64, 64)
        assert torch.allclose(tower.model.pos_embed, _resampled(source, 64), atol=1e-6)
