"""The recipes for released weights compose over their modality and bind to its schemas."""

from __future__ import annotations

import pytest

from framework.config import typed_section
from framework.testing import compose


@pytest.mark.parametrize("modality, recipe, lr", [("text", "smollm2_lora", 2e-4), ("vision", "vit_finetune", 1e-4),
                                                  ("alignment", "minilm_clip", 1e-3)])
def test_each_recipe_composes_and_binds(modality: str, recipe: str, lr: float) -> None:
    from framework.plugins import load_plugins

    cfg = compose([f"+modality={modality}", f"+recipe={recipe}"])
    assert cfg.trainer.lr == lr and 0.05 <= cfg.trainer.warmup_ratio <= 0.1
    for section, schema in load_plugins().modality(modality).sections.items():
        typed_section(cfg, section, schema)


def test_the_vit_recipe_builds_the_published_architecture() -> None:
    from framework.media import timm_kwargs

    model = compose(["+modality=vision", "+recipe=vit_finetune"]).model
    assert timm_kwargs(model) == {} and model.pretrained and model.image_size == 224


def test_the_minilm_recipe_trains_the_text_tower_slower() -> None:
    cfg = compose(["+modality=alignment", "+recipe=minilm_clip", "model.text.name=/models/minilm"])
    assert cfg.model.text.lr_scale == 0.1 and cfg.model.text.tokenizer is None
