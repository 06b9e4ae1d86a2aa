"""The shipped text configs compose and bind to the schemas; the plugin honours the contract."""

from __future__ import annotations

import pytest

import plugins.text.plugin as text_plugin
from framework.config import typed_section
from framework.errors import FrameworkError
from framework.testing import assert_plugin_contract, compose
from plugins.text.config import TextConfig, TextModelConfig
from plugins.text.model import load_model, quantization_config


def test_text_plugin_honours_the_contract() -> None:
    assert_plugin_contract(text_plugin)


def test_sft_and_dpo_configs_compose() -> None:
    sft = compose(["+modality=text"])
    assert sft.modality.method == "sft" and sft.data.format == "auto" and sft.model.lora.rank == 16
    dpo = compose(["+modality=text_dpo"])
    assert dpo.modality.name == "text" and dpo.modality.method == "dpo" and dpo.data.format == "auto"
    assert dpo.data.gates.plugins.preference_reasons.require is True
    assert dpo.data.gates.plugins.loss_mask.gate is True  # inherited from text.yaml
    for cfg in (sft, dpo):
        typed_section(cfg, "modality", TextConfig)
        typed_section(cfg, "model", TextModelConfig)
    with pytest.raises(FrameworkError, match="modality.sft.pack"):
        typed_section(compose(["+modality=text", "+modality.sft.pack=true"]), "modality", TextConfig)


@pytest.mark.slow
def test_model_errors_are_clear() -> None:
    with pytest.raises(FrameworkError, match=r"give a local directory .* or a GGUF file") as offline:
        load_model(TextModelConfig(name="no-such-org/no-such-model"))
    assert "\n" not in str(offline.value) and "set it false to download" not in str(offline.value)
    with pytest.raises(FrameworkError, match="no such GGUF file"):
        load_model(TextModelConfig(name="/nowhere/model.gguf"))
    with pytest.raises(FrameworkError, match="dtype"):
        load_model(TextModelConfig(dtype="float8"))
    with pytest.raises(FrameworkError, match="bitsandbytes|CUDA"):
        quantization_config("4bit")


def test_the_method_picks_one_recipe_per_run(chat_root, pair_root, make_ctx) -> None:
    from plugins.text.modality import TextModality
    from plugins.text.recipes import DPORecipe, SFTRecipe, recipe_for
    from plugins.text.task import DPOTask, SFTTask

    modality = TextModality()
    runs = {"sft": (make_ctx(chat_root), SFTRecipe, SFTTask, "text"),
            "dpo": (make_ctx(pair_root, modality={"method": "dpo"}), DPORecipe, DPOTask, "preference")}
    for ctx, recipe, task, label_type in runs.values():
        assert type(modality.recipe(ctx)) is recipe and modality.recipe(ctx) is modality.recipe(ctx)  # chosen once
        data = modality.load_data(ctx)
        assert data.label_type == label_type and type(modality.build_task(ctx, data)) is task
    assert compose(["+modality=text", "modality.method=dpo"]).modality.method == "dpo"
    with pytest.raises(FrameworkError, match="modality.method='ppo' is unknown; use one of sft, dpo"):
        recipe_for("ppo")


def test_the_exported_tokenizer_config_keeps_no_load_time_option(tmp_path) -> None:
    import json

    from plugins.text.model import clean_tokenizer_config

    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"local_files_only": True, "is_local": True, "gguf_file": "m.gguf", "eos_token": "<|im_end|>",
         "model_max_length": 8192}))
    clean_tokenizer_config(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text()) == {"eos_token": "<|im_end|>",
                                                                            "model_max_length": 8192}
