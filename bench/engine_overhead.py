"""Time the engine's step loop against a hand-written PyTorch loop (same model, data, device).

Both loops consume the same pre-built batches already on the device, so the figure isolates the
engine's per-step overhead (accumulation bookkeeping, the finite-loss check, clipping, schedule,
metric sums, signal flag) from data loading; both use the AdamW kernel the engine picks (fused on
CPU and CUDA), so the optimizer's implementation is not counted as overhead either.

The two loops train side by side in one process and take turns every ``--chunk`` steps (the first
turn alternates between repetitions), each turn timed on its own: a burst from another process
then lands on both loops within milliseconds, instead of on whichever loop held the machine for
that whole repetition. A repetition's ratio is the engine's summed turn time over the plain
loop's; the figure is the median of the repetitions' ratios, printed with their min-max.
Warm-up steps are excluded. Usage::

    python bench/engine_overhead.py --steps 300 --device cpu --batch-size 64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from framework.run_info import RunInfo
from framework.training import Engine, TrainerConfig
from framework.training.schedule import Schedule


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10))


def make_batches(n: int, batch_size: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 64, generator=gen).to(device),  # (B, 64)
             torch.randint(0, 10, (batch_size,), generator=gen).to(device)) for _ in range(n)]  # (B,)


def plain_loop(batches: list) -> Iterator[None]:
    """The nanoGPT-style loop: AdamW (decay and no-decay groups), warmup+cosine lr, clipping, and a
    host read of the loss per step as in nanoGPT's logging. Yields after each step."""
    device = batches[0][0].device
    model = make_model(0).to(device)
    # nanoGPT's grouping, as the engine does: no weight decay on biases and norms.
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=1e-3,
                            fused=device.type in ("cuda", "cpu") or None)  # the engine's kernel: overhead only
    schedule = Schedule.from_ratio(len(batches), 0.05, "cosine", 0.0)
    for step, (x, y) in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * schedule.factor(step)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        loss.item()  # nanoGPT reads the loss every step
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        yield


def engine_loop(batches: list, run_dir: Path) -> Iterator[None]:
    """The same training through Engine.steps/backward. Yields after each step."""
    device = batches[0][0].device
    cfg = TrainerConfig(device=str(device), precision="fp32", lr=1e-3, max_steps=len(batches), log_every=50,
                        progress=False, resume="never", clip_grad_norm=1.0)
    run = RunInfo(run_dir=run_dir, modality="bench", name="bench", config_yaml="")
    with Engine(cfg, run) as engine:
        model = engine.setup(make_model(0))
        engine.save_checkpoint = lambda tag=None: run_dir  # the final save is not part of the loop
        for x, y in engine.steps(batches):
            engine.backward(nn.functional.cross_entropy(model(x), y))
            yield


def interleaved(batches: list, run_dir: Path, warmup: int, chunk: int, plain_first: bool) -> tuple[float, float]:
    """Run both loops to the end in turns of ``chunk`` steps; return their timed seconds after
    ``warmup`` steps as ``(plain, engine)``."""
    device = batches[0][0].device
    loops = {"plain": plain_loop(batches), "engine": engine_loop(batches, run_dir)}
    order = ["plain", "engine"] if plain_first else ["engine", "plain"]
    seconds = {"plain": 0.0, "engine": 0.0}
    for _ in range(warmup):
        for name in order:
            next(loops[name])
    remaining = len(batches) - warmup
    while remaining > 0:
        n = min(chunk, remaining)
        for name in order:
            _sync(device)
            start = time.perf_counter()
            for _ in range(n):
                next(loops[name])
            _sync(device)
            seconds[name] += time.perf_counter() - start
        remaining -= n
    for loop in loops.values():  # let the engine close (it restores the signal handlers)
        for _ in loop:
            pass
    return seconds["plain"], seconds["engine"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per repetition")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=10, help="steps per turn of each loop")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared box)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches = make_batches(args.steps + args.warmup, args.batch_size, device)
    plain, engine = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            p, e = interleaved(batches, Path(tmp), args.warmup, args.chunk, plain_first=rep % 2 == 0)
            plain.append(p)
            engine.append(e)
    ratios = sorted(ei / pi for ei, pi in zip(engine, plain))
    print(f"device={device} batch={args.batch_size} steps={args.steps} repeats={args.repeats} "
          f"turns of {args.chunk} steps (medians)")
    print(f"plain loop : {args.steps / statistics.median(plain):8.1f} steps/s")
    print(f"engine loop: {args.steps / statistics.median(engine):8.1f} steps/s")
    print(f"per-repetition ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"ratio engine_time/plain_time = {statistics.median(ratios):.3f} (median of {len(ratios)} repetitions; "
          f"min-max {ratios[0]:.3f}-{ratios[-1]:.3f}; target <= 1.05)")


if __name__ == "__main__":
    main()
