"""Build the tiny causal LM and tokenizer the text plugin's default runs start from.

Written to ``examples/models/tiny-unit-lm/`` as an ordinary Hugging Face model directory
(``config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json`` with a chat
template, ``generation_config.json``), so it loads through the same
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` path as a real model.

* Tokenizer: byte-level BPE (the ``tokenizers`` library) trained on the bundled unit-conversion
  text, digits split one per token, 384 entries, special tokens ``<|system|> <|user|>
  <|assistant|> <|end|> <|pad|>``. Its chat template marks assistant turns with
  ``{% generation %}``, so ``apply_chat_template(return_assistant_tokens_mask=True)`` gives the
  loss mask directly.
* Model: a Llama-architecture decoder (2 layers, 64 wide, 4 heads, tied embeddings; about 0.12M
  parameters, ~0.5 MB in fp32), pre-trained for 400 steps on plain prose
  (``examples/data/unit_pretrain.txt``: "37 km is 37000 m.", training numbers only). It is a
  *base* model: it has seen conversions stated in prose, never the chat format, so it cannot
  answer chat prompts until SFT teaches it the template.

Usage (after ``examples/make_text_data.py``)::

    python examples/make_tiny_lm.py [--out examples/models/tiny-unit-lm] [--steps 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SPECIALS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '<|end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def corpus(data: Path) -> list[str]:
    texts = (data / "unit_pretrain.txt").read_text(encoding="utf-8").splitlines()
    for name in ("unit_chat", "unit_prefs"):
        for split in ("train", "val", "test"):
            for line in (data / name / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
                obj = json.loads(line)
                texts += [m["content"] for m in obj.get("messages", [])]
                texts += [obj[k] for k in ("prompt", "chosen", "rejected", "reason") if k in obj]
    return texts


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>",
                                   model_max_length=256)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def pretrain(model, tokenizer, lines: list[str], steps: int, seed: int) -> list[float]:
    """Next-token training on prose lines, 32 per batch, each ending in the eos token."""
    g = torch.Generator().manual_seed(seed)
    encoded = [tokenizer(line + tokenizer.eos_token)["input_ids"] for line in lines]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(encoded), (32,), generator=g).tolist()
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((32, width), tokenizer.pad_token_id)
        for row, i in enumerate(idx):
            ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
        labels = ids.masked_fill(ids == tokenizer.pad_token_id, -100)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "models" / "tiny-unit-lm")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer(corpus(args.data), vocab_size=384)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=172, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        rms_norm_eps=1e-5,
    )
    model = LlamaForCausalLM(config)
    lines = (args.data / "unit_pretrain.txt").read_text(encoding="utf-8").splitlines()
    losses = pretrain(model, tokenizer, lines, args.steps, args.seed)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=False,
                                               max_new_tokens=16)
    args.out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out}: {model.num_parameters()} parameters, {len(tokenizer)} tokens, {size:.2f} MB; "
          f"pre-training loss {losses[0]:.2f} -> {sum(losses[-20:]) / 20:.2f}")


if __name__ == "__main__":
    main()
