"""Time the engine's step loop against a nanoGPT-style PyTorch loop (same model, data, device).

Models (``--model``):

* ``mlp``: a three-layer MLP on 64 features (the CPU default): the per-step cost of the engine is
  then most of the step.
* ``gpt2-124m``: GPT-2 124M (12 layers, 12 heads, 768 hidden, 1024 context, vocabulary 50304, no
  dropout), ``transformers.GPT2LMHeadModel`` built from its config with random weights, trained on
  next-token prediction of random token ids of ``--seq-len`` tokens.

Both loops consume the same pre-built batches already on the device, so the figure isolates the
engine's per-step overhead (accumulation bookkeeping, the finite-loss check, clipping, schedule,
metric sums, signal flag) from data loading. Both use the fused AdamW kernel the engine picks,
nanoGPT's hyper-parameters (lr 6e-4, betas 0.9/0.95, weight decay 0.1 on ``ndim >= 2`` tensors,
warmup then cosine to a tenth, clipping at 1.0), the same precision (``--precision``: autocast
bf16 or fp32) and, with ``--compile``, ``torch.compile`` on both sides. The baseline is nanoGPT's
loop without its logging: it never reads a value back to the host, so the GPU queue never drains
inside a turn. The engine side is the engine as a user runs it (``Engine.steps``/``backward``, its
default ``log_every``), including its one host read per step (the non-finite check).

Both loops are built once (one compilation each) and train side by side in one process, taking
turns every ``--chunk`` steps, each turn timed on its own: a burst from another process then lands
on both loops within milliseconds, instead of on whichever loop held the machine for a whole
repetition. After ``--warmup`` untimed steps (compilation included), each loop runs one untimed
turn inside :class:`common.TrainingMemory`: the memory that turn adds on top of what both loops
already hold (activations, gradients; on CUDA the allocator's peak, on a CPU the sampled resident
set). Then come ``--repeats`` repetitions of ``--steps`` steps per loop, the plain loop's turn
first in even ones. A repetition's time ratio is the engine's summed turn time over the plain
loop's; the figure is the median of the repetitions' ratios, printed with their min-max; the
throughput ratio (engine/plain, > 1 = the engine is faster) is its inverse.

On CUDA the bench also prints the model FLOP utilisation (MFU) of both loops: achieved FLOP/s over
the bf16 matmul peak measured in the same run (``torch.matmul`` of two 8192 x 8192 bf16 matrices
in a loop). Achieved FLOP/s counts ``6 * N`` FLOPs per token (forward and backward of every
weight, N the parameters without the position embeddings, the tied output layer counted once) plus
``12 * layers * hidden * seq_len`` for attention, nanoGPT's estimate; the MLP counts ``6 * N`` per
example.

Usage::

    python bench/engine_overhead.py                      # MLP on the CPU, every core
    python bench/engine_overhead.py --model gpt2-124m --device cuda --precision bf16 --batch-size 16 \\
        --seq-len 1024 --steps 30 --warmup 10 --repeats 3 --compile
    python bench/engine_overhead.py --smoke              # seconds: proves it runs
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from common import TrainingMemory, add_common_args, apply_threads, write_json
from torch import nn

from framework.run_info import RunInfo
from framework.training import Engine, TrainerConfig
from framework.training.device import resolve_device, resolve_precision

MODELS = ("mlp", "gpt2-124m")
#: GPT-2 124M as nanoGPT trains it (vocabulary padded to a multiple of 64).
GPT2_124M = {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50304}
#: The same code path at the size of a smoke run.
GPT2_SMOKE = {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 64, "vocab_size": 512}
# nanoGPT's optimizer settings, on both sides.
LR, BETAS, WEIGHT_DECAY, MIN_LR_RATIO, WARMUP_RATIO, CLIP = 6e-4, (0.9, 0.95), 0.1, 0.1, 0.05, 1.0

Batch = tuple[torch.Tensor, torch.Tensor]


class MLPTask(nn.Module):
    """A three-layer MLP with its cross-entropy loss: ``(x, y) -> loss``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # x (B, 64), y (B,)
        return nn.functional.cross_entropy(self.net(x), y)


class GPT2Task(nn.Module):
    """``GPT2LMHeadModel`` (random weights, no dropout) with nanoGPT's next-token loss inside
    ``forward`` (so ``torch.compile`` covers it): ``(x, y) -> loss``."""

    def __init__(self, shape: dict[str, int]) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        end = shape["vocab_size"] - 1  # any id inside the vocabulary: nothing is generated
        config = GPT2Config(**shape, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
                            bos_token_id=end, eos_token_id=end,
                            attn_implementation="sdpa")  # fused attention, as nanoGPT's flash path
        self.lm = GPT2LMHeadModel(config)
        self.shape = shape

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # x, y (B, T) token ids
        logits = self.lm(input_ids=x).logits  # (B, T, V)
        return nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())

    def flops_per_token(self, seq_len: int) -> float:
        """nanoGPT's estimate: ``6 N`` (weights, forward and backward) plus attention's ``12 L d T``."""
        n = sum(p.numel() for p in self.parameters()) - self.lm.transformer.wpe.weight.numel()
        return 6 * n + 12 * self.shape["n_layer"] * self.shape["n_embd"] * seq_len


@dataclass
class Workload:
    """What both loops train on: a task factory, the batches, items per batch and FLOPs per item."""

    make_task: Callable[[], nn.Module]
    batches: list[Batch]
    items_per_batch: int
    unit: str
    flops_per_item: float
    flops_formula: str
    describe: str


def workload(args: argparse.Namespace, device: torch.device) -> Workload:
    """The model and batches ``--model`` names, at the sizes of ``args``."""
    n, b = args.warmup + args.chunk + args.repeats * args.steps, args.batch_size  # chunk: the memory turn
    gen = torch.Generator().manual_seed(0)
    if args.model == "mlp":
        batches = [(torch.randn(b, 64, generator=gen).to(device),  # (B, 64)
                    torch.randint(0, 10, (b,), generator=gen).to(device)) for _ in range(n)]  # (B,)
        params = sum(p.numel() for p in MLPTask().parameters())
        return Workload(MLPTask, batches, b, "examples/s", 6.0 * params,
                        f"6 * N (N = {params:,} parameters) per example", "MLP 64-256-256-10")
    shape = GPT2_SMOKE if args.smoke else GPT2_124M
    seq = min(args.seq_len, shape["n_positions"])
    tokens = [torch.randint(0, shape["vocab_size"], (b, seq + 1), generator=gen) for _ in range(n)]
    batches = [(t[:, :-1].contiguous().to(device), t[:, 1:].contiguous().to(device)) for t in tokens]  # (B, T) each
    probe = GPT2Task(shape)
    flops = probe.flops_per_token(seq)
    n_params = sum(p.numel() for p in probe.parameters())
    name = "GPT-2 124M" if shape is GPT2_124M else "GPT-2 shape shrunk for the smoke run"
    describe = (f"{name} (transformers GPT2LMHeadModel, random weights: {shape['n_layer']} layers, {shape['n_head']} "
                f"heads, {shape['n_embd']} hidden, vocab {shape['vocab_size']}, {n_params / 1e6:.1f}M parameters), "
                f"seq_len {seq}")
    return Workload(lambda: GPT2Task(shape), batches, b * seq, "tokens/s", flops,
                    f"6 * N + 12 * layers * hidden * seq_len = {flops:.4g} per token", describe)


def make_task(work: Workload, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return work.make_task()


def lr_at(step: int, total: int) -> float:
    """nanoGPT's ``get_lr``: linear warmup, then cosine decay to a tenth of the rate."""
    warmup = int(round(WARMUP_RATIO * total))
    if step < warmup:
        return LR * (step + 1) / warmup
    ratio = min(1.0, (step - warmup) / max(1, total - warmup))
    return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1.0 + math.cos(math.pi * ratio)))


def plain_loop(work: Workload, precision: str, compile: bool) -> Iterator[int]:
    """nanoGPT's training loop (without its logging): fused AdamW with decay and no-decay groups,
    warmup + cosine lr, autocast, clipping; no host read. Yields the items of each step."""
    device = work.batches[0][0].device
    task = make_task(work).to(device)
    model = torch.compile(task) if compile else task
    params = [p for p in task.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": WEIGHT_DECAY},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, fused=True)
    ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())
    total = len(work.batches)
    for step, (x, y) in enumerate(work.batches):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total)
        with ctx:
            loss = model(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        yield work.items_per_batch


def engine_loop(work: Workload, precision: str, compile: bool, run_dir: Path) -> Iterator[int]:
    """The same training through ``Engine.steps``/``backward``, as a user writes it. Yields the
    items of each step."""
    device = work.batches[0][0].device
    cfg = TrainerConfig(device=str(device), precision=precision, compile=compile, lr=LR, betas=list(BETAS),
                        weight_decay=WEIGHT_DECAY, warmup_ratio=WARMUP_RATIO, min_lr_ratio=MIN_LR_RATIO,
                        clip_grad_norm=CLIP, max_steps=len(work.batches), progress=False, resume="never")
    run = RunInfo(run_dir=run_dir, modality="bench", name="bench", config_yaml="")
    with Engine(cfg, run) as engine:
        model = engine.setup(make_task(work))
        engine.save_checkpoint = lambda tag=None: run_dir  # the final save is not part of the loop
        for x, y in engine.steps(work.batches):
            with engine.autocast():
                loss = model(x, y)
            engine.backward(loss)
            yield work.items_per_batch


@dataclass
class Repetition:
    """One repetition's timed seconds and items per loop."""

    seconds: dict[str, float]
    items: dict[str, int]


def interleaved(work: Workload, args: argparse.Namespace, run_dir: Path) -> tuple[dict[str, float], list[Repetition]]:
    """Train both loops side by side in turns of ``args.chunk`` steps: ``args.warmup`` untimed
    steps each, one untimed turn each inside :class:`TrainingMemory`, then ``args.repeats``
    repetitions of ``args.steps`` timed steps each (the plain loop goes first in even ones).

    Returns:
        The memory (MiB) each loop's untimed turn added, and the repetitions.
    """
    device = work.batches[0][0].device
    loops = {"plain": plain_loop(work, args.precision, args.compile),
             "engine": engine_loop(work, args.precision, args.compile, run_dir)}
    for _ in range(args.warmup):
        for loop in loops.values():
            next(loop)
    memory = {}
    for name, loop in loops.items():
        with TrainingMemory(device) as meter:
            for _ in range(args.chunk):
                next(loop)
        memory[name] = meter.peak_mib
    reps = []
    for i in range(args.repeats):
        order = ["plain", "engine"] if i % 2 == 0 else ["engine", "plain"]
        rep = Repetition({name: 0.0 for name in order}, {name: 0 for name in order})
        remaining = args.steps
        while remaining > 0:
            n = min(args.chunk, remaining)
            for name in order:
                _sync(device)
                start = time.perf_counter()
                items = sum(next(loops[name]) for _ in range(n))
                _sync(device)
                rep.seconds[name] += time.perf_counter() - start
                rep.items[name] += items
            remaining -= n
        reps.append(rep)
    for loop in loops.values():  # let the engine close (it restores the signal handlers)
        for _ in loop:
            pass
    return memory, reps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int = 8192, iters: int = 100) -> float:
    """bf16 FLOP/s of ``torch.matmul`` on two ``n x n`` matrices in a loop (after a warm-up)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    out = torch.empty(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(10):
        torch.matmul(a, b, out=out)
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        torch.matmul(a, b, out=out)
    _sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - start)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser, model="mlp", batch_size=64, steps=300, length=1024,
                    length_help="tokens per sequence (gpt2-124m only; at most the model's context)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="autocast on both sides (auto: bf16 on a CUDA device that has it, else fp32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model on both sides")
    parser.add_argument("--repeats", type=int, default=11, help="timed repetitions of --steps steps per loop")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps per loop before the timed turns")
    parser.add_argument("--chunk", type=int, default=10, help="steps per turn of each loop")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (batch 4, 2 timed steps, 1 repetition; GPT-2 shrunk): proves it runs")
    args = parser.parse_args(argv)
    if args.model not in MODELS:
        parser.error(f"--model {args.model!r} is not one of {', '.join(MODELS)}")
    if args.smoke:
        args.batch_size, args.seq_len, args.steps, args.warmup, args.chunk, args.repeats = 4, 32, 2, 1, 1, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    threads = apply_threads(args.threads)
    device = resolve_device(args.device)
    args.precision = resolve_precision(args.precision, device)
    work = workload(args, device)
    with tempfile.TemporaryDirectory() as tmp:
        memory, reps = interleaved(work, args, Path(tmp))
    time_ratios = sorted(r.seconds["engine"] / r.seconds["plain"] for r in reps)
    rate = {name: statistics.median(r.items[name] / r.seconds[name] for r in reps) for name in ("plain", "engine")}
    time_ratio = statistics.median(time_ratios)
    figures: dict[str, Any] = {
        "bench": "engine_overhead", "model": args.model, "workload": work.describe, "device": str(device),
        "precision": args.precision, "compile": args.compile, "batch_size": args.batch_size,
        "seq_len": args.seq_len if args.model != "mlp" else None, "steps": args.steps, "warmup": args.warmup,
        "chunk": args.chunk, "repeats": args.repeats, "threads": threads, "smoke": args.smoke,
        "peer": "nanoGPT-style loop (fused AdamW, warmup+cosine, clipping, no per-step host read)",
        "unit": work.unit, "plain_per_s": rate["plain"], "engine_per_s": rate["engine"],
        "ratio": 1 / time_ratio, "time_ratio": time_ratio, "time_ratios": time_ratios,
        "plain_memory_mib": memory["plain"], "engine_memory_mib": memory["engine"],
        "memory_ratio": memory["engine"] / memory["plain"] if memory["plain"] > 0 else float("nan"),
    }
    print(f"{work.describe}; device={device} precision={args.precision} compile={args.compile} "
          f"batch={args.batch_size} steps={args.steps} warmup={args.warmup} repeats={args.repeats} "
          f"torch_threads={threads}; turns of {args.chunk} steps (medians)")
    print(f"baseline: {figures['peer']}, torch {torch.__version__}")
    print(f"plain loop : {rate['plain']:12.1f} {work.unit}")
    print(f"engine loop: {rate['engine']:12.1f} {work.unit}")
    print(f"memory added by a turn of steps: plain {memory['plain']:.1f} MiB, engine {memory['engine']:.1f} MiB")
    if device.type == "cuda":
        peak = matmul_peak(device)
        figures.update(peak_tflops=peak / 1e12, flops_per_item=work.flops_per_item, flops_formula=work.flops_formula,
                       plain_mfu=rate["plain"] * work.flops_per_item / peak,
                       engine_mfu=rate["engine"] * work.flops_per_item / peak)
        print(f"MFU: plain {figures['plain_mfu']:.1%}, engine {figures['engine_mfu']:.1%} of the measured bf16 "
              f"matmul peak {peak / 1e12:.0f} TFLOP/s (8192^3 torch.matmul loop); FLOPs: {work.flops_formula}")
    print(f"per-repetition ratios: {', '.join(f'{r:.3f}' for r in time_ratios)}")
    print(f"ratio engine_time/plain_time = {time_ratio:.3f} (median of {len(time_ratios)} repetitions; "
          f"min-max {time_ratios[0]:.3f}-{time_ratios[-1]:.3f}; target <= 1.05); throughput engine/plain "
          f"{1 / time_ratio:.3f}")
    write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
