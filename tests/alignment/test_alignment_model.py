"""The dual encoder: tower options (freezing, LoRA, a local CLIPModel), export and reload, the retrieval API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alignment_fixtures import SHAPES, TOKENIZER, model_config, onnx_matches_on_padded_batches
from framework.errors import FrameworkError
from plugins.alignment.export import ServingInfo, export_model, load_encoder, serving_info
from plugins.alignment.modality import task_from_config

PATHS = [SHAPES / "images" / "val" / f"{i:04d}.png" for i in range(3)]


def _trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_features_are_unit_vectors_and_the_temperature_is_clamped() -> None:
    task = task_from_config(model_config(max_logit_scale=20.0))
    texts = task.encode_texts(["a small red circle in the centre", "top left: a blue square, large"])
    images = task.encode_images(PATHS)
    assert texts.shape == (2, 32) and images.shape == (3, 32)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert task.scale().item() == pytest.approx(1 / 0.07, rel=1e-4)
    with torch.no_grad():
        task.logit_scale.fill_(10.0)
    assert task.scale().item() == pytest.approx(20.0)


def test_images_from_paths_pil_and_pixels_embed_alike() -> None:
    task = task_from_config(model_config())
    from_paths = task.encode_images(PATHS)
    with Image.open(PATHS[0]) as img:
        from_pil = task.encode_images([img.copy()])
    assert np.allclose(from_paths[0], from_pil[0], atol=1e-5)


def test_freezing_a_tower_leaves_its_projection_trainable() -> None:
    full = task_from_config(model_config())
    frozen = task_from_config(model_config(freeze_image=True, freeze_text=True))
    assert _trainable(frozen.image_encoder) == 0 and _trainable(frozen.text_encoder) == 0
    assert _trainable(frozen.image_proj) == _trainable(full.image_proj) > 0
    assert _trainable(frozen.text_proj) > 0 and frozen.logit_scale.requires_grad
    assert _trainable(full.image_encoder) > 0


def test_lora_trains_adapters_only_on_the_text_tower() -> None:
    task = task_from_config(model_config(text={"lora": {"r": 4, "target_modules": ["query", "value"]}}))
    names = [n for n, p in task.text_encoder.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert _trainable(task.image_encoder) > 0


def test_lora_on_missing_modules_is_a_clear_error() -> None:
    with pytest.raises(FrameworkError, match="target_modules"):
        task_from_config(model_config(text={"lora": {"r": 4, "target_modules": ["q_proj_nowhere"]}}))


def test_a_causal_clip_text_tower_from_config_pools_the_end_of_text_token() -> None:
    task = task_from_config(model_config(text={"architecture": "clip_text_model", "pooling": "last",
                                               "config": {"vocab_size": 500, "hidden_act": "gelu"}}))
    encoder = task.text_encoder.model
    assert type(encoder).__name__ == "CLIPTextModel" and encoder.get_input_embeddings().num_embeddings == 500
    batch = task.tokenize(["a red circle", "top left: a blue square, large"])
    last = batch["attention_mask"].sum(dim=1) - 1
    with torch.no_grad():
        states = encoder(**batch).last_hidden_state
        pooled = task.text_encoder(batch["input_ids"], batch["attention_mask"])
    assert int(batch["input_ids"][0, last[0]]) == task.tokenizer.sep_token_id  # the end-of-text token
    assert torch.allclose(pooled, states[torch.arange(2), last])
    assert task.encode_texts(["a red circle"]).shape == (1, 32)


def test_text_towers_from_config_refuse_unknown_types_and_short_vocabularies() -> None:
    with pytest.raises(FrameworkError, match="not a transformers model type"):
        task_from_config(model_config(text={"architecture": "bertish_model"}))
    with pytest.raises(FrameworkError, match="smaller than the tokenizer"):
        task_from_config(model_config(text={"config": {"vocab_size": 10}}))
    with pytest.raises(FrameworkError, match="pooling"):
        task_from_config(model_config(text={"pooling": "max"}))


def test_a_text_tower_by_local_directory_and_a_missing_one(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path / "bert")
    task = task_from_config(model_config(text={"name": str(tmp_path / "bert"), "config": {}}))
    assert task.text_encoder.dim == 32
    with pytest.raises(FrameworkError, match="could not be loaded"):
        task_from_config(model_config(text={"name": str(tmp_path / "nowhere"), "config": {}}))


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIPModel saved with the project's tokenizer and a 16 px image processor."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    out = tmp_path_factory.mktemp("clip")
    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 32,
                     "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 16, "patch_size": 8},
        projection_dim=24,
    )
    CLIPModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(out)
    return out


def test_a_local_clip_model_provides_both_towers(clip_dir: Path, tmp_path: Path) -> None:
    task = task_from_config(model_config(clip=str(clip_dir), text={"max_length": 16}))
    assert task.spec.size == (16, 16) and task.image_proj.out_features == 24
    images, texts = task.encode_images(PATHS), task.encode_texts(["a small red circle in the centre"])
    assert images.shape == (3, 24) and texts.shape == (1, 24)
    batch = {"image": torch.zeros(2, 3, 16, 16, dtype=torch.uint8), **task.tokenize(["a red circle", "a blue square"])}
    task(batch)["loss"].backward()
    assert task.image_proj.weight.grad is not None
    cfg = model_config(clip=str(clip_dir), text={"max_length": 16})
    written = export_model(task, serving_info(task, cfg, "stretch"), tmp_path / "export", "seed: 0\n")
    assert (tmp_path / "export" / "clip" / "config.json").is_file() and written
    reloaded = load_encoder(tmp_path / "export")
    assert np.allclose(reloaded.encode_images(PATHS), images, atol=1e-5)


def test_export_reloads_to_the_same_embeddings_and_the_towers_load_alone(tmp_path: Path) -> None:
    import timm
    from transformers import AutoModel, AutoTokenizer

    cfg = model_config(text={"lora": {"r": 2}})
    task = task_from_config(cfg)
    with torch.no_grad():  # LoRA's B starts at zero: make the adapters matter
        for name, p in task.text_encoder.named_parameters():
            if "lora_B" in name:
                p.normal_()
    written = export_model(task, serving_info(task, cfg, "stretch"), tmp_path / "export", "seed: 0\n")
    names = {p.name for p in written}
    assert {"model.safetensors", "alignment.json", "tokenizer", "text_tower", "image_tower",
            "projections.safetensors"} <= names
    reloaded = load_encoder(tmp_path / "export")
    caption = ["there is a large square coloured green at the top right"]
    assert np.allclose(reloaded.encode_texts(caption), task.encode_texts(caption), atol=1e-5)
    assert np.allclose(reloaded.encode_images(PATHS), task.encode_images(PATHS), atol=1e-5)
    # The towers in their own libraries' formats (LoRA merged into the text tower).
    text_model = AutoModel.from_pretrained(tmp_path / "export" / "text_tower")
    enc = AutoTokenizer.from_pretrained(tmp_path / "export" / "tokenizer")(caption, return_tensors="pt")
    task.eval()  # no dropout
    states = text_model(**{k: enc[k] for k in ("input_ids", "attention_mask")}).last_hidden_state
    ours = task.text_encoder.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    assert torch.allclose(states, ours, atol=1e-4)
    image_model = timm.create_model(f"local-dir:{tmp_path / 'export' / 'image_tower'}", pretrained=True)
    x = torch.randn(1, 3, 16, 16)
    assert torch.allclose(image_model.eval()(x), task.image_encoder.model.eval()(x), atol=1e-5)
    assert ServingInfo.read(tmp_path / "export" / "alignment.json").image["size"] == [16, 16]


def test_load_encoder_without_serving_info_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="alignment.json"):
        load_encoder(tmp_path)


def test_the_export_keeps_the_resize_policy_and_load_serving_returns_it(tmp_path: Path) -> None:
    from plugins.alignment.export import load_serving

    wide = tmp_path / "wide.png"
    pixels = np.zeros((16, 48, 3), dtype=np.uint8)
    pixels[:, :16, 0] = pixels[:, 16:32, 1] = pixels[:, 32:, 2] = 255  # red | green | blue
    Image.fromarray(pixels).save(wide)
    cfg = model_config()
    task = task_from_config(cfg)
    export_model(task, serving_info(task, cfg, "crop"), tmp_path / "export", "seed: 0\n")
    reloaded, info = load_serving(tmp_path / "export")
    assert info.resize == "crop" and ServingInfo.read(tmp_path / "export" / "alignment.json").resize == "crop"
    cropped = task.encode_images([wide], resize="crop")
    assert np.allclose(reloaded.encode_images([wide], resize=info.resize), cropped, atol=1e-5)
    assert not np.allclose(task.encode_images([wide], resize="stretch"), cropped, atol=1e-3)


def _bert_dir(out: Path, vocab_size: int, tokenizer: Path | None = None) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    BertModel(BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(out)
    if tokenizer is not None:
        AutoTokenizer.from_pretrained(str(tokenizer)).save_pretrained(out)
    return out


def test_a_text_tower_by_directory_uses_its_own_tokenizer(tmp_path: Path) -> None:
    from plugins.alignment.model import BUNDLED_TOKENIZER

    own = _bert_dir(tmp_path / "bert", 120, tokenizer=TOKENIZER)
    task = task_from_config(model_config(text={"name": str(own), "tokenizer": None, "config": {}}))
    assert Path(task.tokenizer.name_or_path) == own
    built = task_from_config(model_config(text={"tokenizer": None}))  # built from config: the bundled one
    assert Path(built.tokenizer.name_or_path) == BUNDLED_TOKENIZER


def test_a_tokenizer_that_does_not_fit_the_embedding_table_is_an_error(tmp_path: Path) -> None:
    big = _bert_dir(tmp_path / "big", 1000)
    with pytest.raises(FrameworkError, match="tokenizer has 120 tokens but the encoder's embedding table has 1000"):
        task_from_config(model_config(text={"name": str(big), "tokenizer": str(TOKENIZER), "config": {}}))


def test_per_tower_learning_rates_scale_each_tower_and_leave_the_heads_at_the_base_rate() -> None:
    from plugins.alignment.model import tower_param_groups

    task = task_from_config(model_config())
    groups = tower_param_groups(task, lr=1e-3, weight_decay=0.1, image_scale=0.1, text_scale=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert [lr_of[id(p)] for p in task.image_encoder.parameters()] == pytest.approx([1e-4] * len(list(task.image_encoder.parameters())))
    assert [lr_of[id(p)] for p in task.text_encoder.parameters()] == pytest.approx([5e-4] * len(list(task.text_encoder.parameters())))
    assert lr_of[id(task.image_proj.weight)] == lr_of[id(task.logit_scale)] == 1e-3
    assert sum(len(g["params"]) for g in groups) == len([p for p in task.parameters() if p.requires_grad])
    assert all(g["weight_decay"] == 0.0 for g in groups if any(p.ndim < 2 for p in g["params"]))


def test_an_image_tower_from_a_local_timm_weights_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = task_from_config(model_config())
    weights = {k: v.contiguous() for k, v in source.image_encoder.model.state_dict().items()}
    save_file(weights, tmp_path / "vit.safetensors")
    task = task_from_config(model_config(image={"checkpoint_path": str(tmp_path / "vit.safetensors")}))
    for name, tensor in task.image_encoder.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


@pytest.mark.slow  # onnx, onnxruntime and two exports: several seconds
def test_both_towers_export_to_onnx_and_match_under_onnxruntime_on_padded_batches(tmp_path: Path) -> None:
    task = task_from_config(model_config()).eval()
    assert onnx_matches_on_padded_batches(task, tmp_path) <= 1e-4
