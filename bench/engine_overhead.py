"""Time the engine's step loop against a hand-written PyTorch loop (same model, data, device).

Both loops consume the same pre-built batches already on the device, so the figure isolates the
engine's per-step overhead (accumulation bookkeeping, the finite-loss check, clipping, schedule,
metric sums, signal flag) from data loading; both use the AdamW kernel the engine picks (fused on
CPU and CUDA), so the optimizer's implementation is not counted as overhead either. Runs
alternate order to cancel drift; warm-up steps are excluded. Usage::

    python bench/engine_overhead.py --steps 300 --device cpu --batch-size 64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from framework.hookspecs import RunInfo
from framework.training import Engine, TrainerConfig
from framework.training.schedule import Schedule


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10))


def make_batches(n: int, batch_size: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 64, generator=gen).to(device),  # (B, 64)
             torch.randint(0, 10, (batch_size,), generator=gen).to(device)) for _ in range(n)]  # (B,)


def plain_loop(batches: list, device: torch.device, warmup: int) -> float:
    """The nanoGPT-style loop: AdamW (decay and no-decay groups), warmup+cosine lr, clipping, and a
    host read of the loss per step as in nanoGPT's logging. Returns seconds after warm-up."""
    model = make_model(0).to(device)
    # nanoGPT's grouping, as the engine does: no weight decay on biases and norms.
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=1e-3,
                            fused=device.type in ("cuda", "cpu") or None)  # the engine's kernel: overhead only
    schedule = Schedule.from_ratio(len(batches), 0.05, "cosine", 0.0)
    start = 0.0
    for step, (x, y) in enumerate(batches):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = 1e-3 * schedule.factor(step)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        lossf = loss.item()  # noqa: F841 - nanoGPT reads the loss every step
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - start


def engine_loop(batches: list, device: torch.device, warmup: int, run_dir: Path) -> float:
    """The same training through Engine.steps/backward. Returns seconds after warm-up."""
    cfg = TrainerConfig(device=str(device), precision="fp32", lr=1e-3, max_steps=len(batches), log_every=50,
                        progress=False, resume="never", clip_grad_norm=1.0)
    run = RunInfo(run_dir=run_dir, modality="bench", name="bench", config_yaml="")
    with Engine(cfg, run) as engine:
        model = engine.setup(make_model(0))
        engine.save_checkpoint = lambda tag=None: run_dir  # the final save is not part of the loop
        start = 0.0
        for x, y in engine.steps(batches):
            if engine.state.step == warmup and engine._micro == 0:
                _sync(device)
                start = time.perf_counter()
            engine.backward(nn.functional.cross_entropy(model(x), y))
        _sync(device)
        return time.perf_counter() - start


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
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared box)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches = make_batches(args.steps + args.warmup, args.batch_size, device)
    plain, engine = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            order = [plain_loop, engine_loop] if rep % 2 == 0 else [engine_loop, plain_loop]
            for fn in order:
                extra = (Path(tmp),) if fn is engine_loop else ()
                seconds = fn(batches, device, args.warmup, *extra)
                (plain if fn is plain_loop else engine).append(seconds)
    p, e = statistics.median(plain), statistics.median(engine)
    # Each repetition times both loops back to back, so the per-pair ratio cancels slow drifts of a
    # shared machine; the median of those ratios is the figure reported.
    ratios = sorted(ei / pi for ei, pi in zip(engine, plain))
    print(f"device={device} batch={args.batch_size} steps={args.steps} repeats={args.repeats} (medians)")
    print(f"plain loop : {args.steps / p:8.1f} steps/s")
    print(f"engine loop: {args.steps / e:8.1f} steps/s")
    print(f"per-repetition ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"ratio engine_time/plain_time = {statistics.median(ratios):.3f} (median of pairs; target <= 1.05)")


if __name__ == "__main__":
    main()
