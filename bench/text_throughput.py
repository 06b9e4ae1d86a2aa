"""Text training throughput and peak memory: this plugin vs TRL's SFTTrainer and DPOTrainer.

Both sides train the same model (the shipped ``model=tiny``, LoRA r16/alpha32 on all linear
layers), on the same data (the bundled unit-conversion chats and preference pairs), with the same
batch size, sequence length, learning rate and step count, on the same device:

* SFT: chat template, assistant-only loss, packing (ours: next-fit packing with position-id
  restarts; TRL: ``packing=True``, ``assistant_only_loss=True``). Figure: trained-on sequence tokens
  per second (non-pad tokens of the batches consumed).
* DPO: sigmoid loss, beta 0.1, reference = the model with adapters disabled on both sides.
  Figure: pairs per second.

Both sides compute in fp32 without gradient checkpointing: TRL's configs default to bf16 autocast
and gradient checkpointing, which are turned off for it (with them on, TRL is about ten times
slower on a CPU without bf16 matrix units, which says nothing about the trainers).

Each trainer runs in its own fresh process, so peak memory is that process's own: peak resident
set size on CPU (``ru_maxrss``), ``torch.cuda.max_memory_allocated`` on CUDA. Time covers the
training call only (model loading and dataset preparation excluded), over ``--steps`` optimizer
steps after as many untimed ones (warm-up: kernels, caches, allocator); for this plugin, the
figures the engine logs for that window (``log_every = steps``). Ratios > 1.0 mean this plugin is faster; memory ratios
< 1.0 mean it uses less.

Usage (TRL is in the optional ``bench`` extra: ``pip install -e ".[bench]"``)::

    python bench/text_throughput.py --steps 30 --device cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
BATCH, LR, MAX_LEN = 16, 3e-3, 64


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _ctx(method: str, tmp: Path) -> Any:
    """The config ``python -m framework +modality=text`` (``text_dpo`` for DPO) runs, at MAX_LEN
    tokens, training data only, no baseline or probes (not part of the timed loop)."""
    from framework.testing import prepared

    name = "text" if method == "sft" else "text_dpo"
    _, ctx = prepared([f"+modality={name}", f"modality.max_length={MAX_LEN}", "modality.baseline=false",
                       "modality.probes.file=null", "data.val=null", "data.test=null"], tmp)
    return ctx


def ours(method: str, steps: int, warmup: int, device: str) -> dict[str, float]:
    """This plugin's loop on the engine; counts come from the engine's own log of the timed window."""
    from framework.hookspecs import RunInfo
    from framework.training import Engine, TrainerConfig
    from plugins.text.modality import TextModality

    tmp = Path(tempfile.mkdtemp(prefix="bench-text-"))
    ctx = _ctx(method, tmp)
    modality = TextModality()
    data = modality.load_data(ctx)
    task = modality.build_task(ctx, data)
    cfg = TrainerConfig(max_steps=warmup + steps, batch_size=BATCH, lr=LR, weight_decay=0.0, warmup_ratio=0.0,
                        log_every=steps, progress=False, device=device, precision="fp32", epochs=100)
    info = RunInfo(run_dir=tmp, modality="text", name="bench", config_yaml="")
    started = time.perf_counter()
    with Engine(cfg, info, seed=0) as engine:
        modality.train(ctx, engine, task, data)
    total = time.perf_counter() - started
    row = [json.loads(line) for line in (tmp / "metrics.jsonl").read_text().splitlines()
           if json.loads(line)["kind"] == "train"][-1]["metrics"]
    return {"tokens_per_s": row.get("tokens_per_s", 0.0), "items_per_s": row["items_per_s"], "seconds": total,
            "peak_mb": _peak_mb(device)}


def _trl_data(method: str) -> Any:
    from datasets import Dataset

    folder = "unit_chat" if method == "sft" else "unit_prefs"
    rows = [json.loads(x) for x in (ROOT / "examples" / "data" / folder / "train.jsonl").read_text().splitlines()]
    if method == "sft":
        return Dataset.from_list([{"messages": r["messages"]} for r in rows])
    return Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "chosen": [{"role": "assistant", "content": r["chosen"]}],
                               "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])


class _Timer:
    """A TrainerCallback timing the optimizer steps after ``warmup`` up to the last one, the window
    the engine's log covers on our side (the trainer's end-of-training work is outside both)."""

    def __init__(self, warmup: int, last: int) -> None:
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
                if state.global_step == warmup:
                    timer.start = time.perf_counter()
                if state.global_step == last:
                    timer.end = time.perf_counter()
                return control

        self.callback, self.start, self.end = Callback(), None, None


def trl(method: str, steps: int, warmup: int, device: str) -> dict[str, float]:
    """TRL's SFTTrainer / DPOTrainer with the same model, LoRA, data and settings."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from plugins.text.model import resolve_name

    name = resolve_name("examples/models/tiny-unit-lm")
    tok = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="sdpa")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    common = dict(output_dir=tempfile.mkdtemp(prefix="bench-trl-"), per_device_train_batch_size=BATCH,
                  learning_rate=LR, weight_decay=0.0, warmup_steps=0, max_steps=warmup + steps, report_to=[],
                  save_strategy="no", logging_steps=steps, use_cpu=device == "cpu", max_length=MAX_LEN,
                  dataloader_num_workers=0, seed=0, disable_tqdm=True, lr_scheduler_type="cosine",
                  # TRL 1.x defaults to bf16 autocast and gradient checkpointing; ours runs fp32 without
                  # recomputation on a CPU, so both are turned off to time the same computation.
                  bf16=False, gradient_checkpointing=False)
    timer = _Timer(warmup, warmup + steps)
    if method == "sft":
        args = SFTConfig(packing=True, assistant_only_loss=True, **common)
        trainer = SFTTrainer(model=model, args=args, train_dataset=_trl_data("sft"), processing_class=tok,
                             peft_config=lora, callbacks=[timer.callback])
    else:
        args = DPOConfig(beta=0.1, loss_type="sigmoid", **common)
        trainer = DPOTrainer(model=model, args=args, train_dataset=_trl_data("dpo"), processing_class=tok,
                             peft_config=lora, callbacks=[timer.callback])
    started = time.perf_counter()
    trainer.train()
    end = time.perf_counter()
    elapsed = (timer.end or end) - (timer.start or started)
    out = {"seconds": end - started, "peak_mb": _peak_mb(device), "items_per_s": BATCH * steps / elapsed}
    if method == "sft":
        lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
        out["tokens_per_s"] = sum(lengths) / len(lengths) * BATCH * steps / elapsed
    return out


def worker(args: argparse.Namespace) -> None:
    side, method = args.worker.split(":")
    fn = ours if side == "ours" else trl
    print("RESULT " + json.dumps(fn(method, args.steps, args.steps, args.device)), flush=True)


def run_worker(spec: str, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", spec, "--steps", str(args.steps), "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per trainer")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    results = {spec: run_worker(spec, args) for spec in ("ours:sft", "trl:sft", "ours:dpo", "trl:dpo")}
    print(f"device {args.device}, {args.steps} timed steps after {args.steps} untimed, batch {BATCH}, max_length {MAX_LEN}, "
          f"LoRA r16 on the bundled tiny LM")
    print(f"{'':10}{'ours':>14}{'TRL':>14}{'ratio':>8}")
    sft_o, sft_t, dpo_o, dpo_t = (results[k] for k in ("ours:sft", "trl:sft", "ours:dpo", "trl:dpo"))
    rows = [("SFT tokens/s", sft_o["tokens_per_s"], sft_t["tokens_per_s"]),
            ("SFT peak MB", sft_o["peak_mb"], sft_t["peak_mb"]),
            ("DPO pairs/s", dpo_o["items_per_s"], dpo_t["items_per_s"]),
            ("DPO peak MB", dpo_o["peak_mb"], dpo_t["peak_mb"])]
    for label, a, b in rows:
        print(f"{label:14}{a:10.1f}{b:14.1f}{a / b:8.2f}x")
    print(json.dumps({"sft_throughput_ratio": rows[0][1] / rows[0][2], "sft_memory_ratio": rows[1][1] / rows[1][2],
                      "dpo_throughput_ratio": rows[2][1] / rows[2][2], "dpo_memory_ratio": rows[3][1] / rows[3][2]}))


if __name__ == "__main__":
    main()
