"""Training throughput of the vision plugin's loop on the engine vs a plain timm + torch loop.

Both loops train the same model (built from the shipped ``model=`` group) on the same data (the
bundled digits, decoded and cached by the plugin, augmented by the shipped pipeline), on the same
device, at the same precision, with AdamW, a warmup + cosine schedule and gradient clipping. The
plugin's loop adds what the engine gives: seeded per-item augmentation, a resumable sampler,
non-finite-loss checks, metric logging and the final checkpoint.

Each round runs ``2 * steps`` optimizer steps per loop and times the second half as one window
(the first half warms up kernels, caches and the allocator), data loading included: for the
engine, the ``items_per_s`` it logs once for that window (``log_every = steps``); for the plain
loop, images over ``perf_counter`` time. Rounds alternate between the two loops, and the figure
reported is the median over rounds, which shrugs off bursts from other processes on a shared
machine.

Usage::

    python bench/vision_throughput.py --device cpu --steps 50 --model vit
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from framework.data.config import DataConfig
from framework.hookspecs import RunInfo
from framework.modality import RunContext
from framework.training import Engine, TrainerConfig
from framework.training.device import autocast, resolve_device, resolve_precision
from framework.media.augment import build_pipeline
from plugins.vision.config import VisionConfig, VisionModelConfig
from plugins.vision.dataset import ImageDataset
from plugins.vision.loop import train_classifier
from plugins.vision.modality import STORE_KEY, VisionModality

CONF = Path(__file__).resolve().parents[1] / "plugins" / "vision" / "conf"


def load(model_group: str, tmp: Path) -> tuple[RunContext, VisionModality, object]:
    """The shipped config with the given model group, and the bundled digits, decoded once."""
    shipped = OmegaConf.load(CONF / "modality" / "vision.yaml")
    ctx = RunContext(
        run_dir=tmp, seed=0, plugins=None,
        modality=OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(VisionConfig), shipped.modality)),
        model=OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(VisionModelConfig),
                                                  OmegaConf.load(CONF / "model" / f"{model_group}.yaml"))),
        data=OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), shipped.data)),
    )
    modality = VisionModality()
    return ctx, modality, modality.load_data(ctx)


def plugin_round(ctx: RunContext, modality: VisionModality, data, args: argparse.Namespace,
                 run_dir: Path) -> list[float]:
    """Per-step images/s of the plugin's loop over the second half of ``2 * steps`` steps."""
    task = modality.build_task(ctx, data)
    store = ctx.extras[STORE_KEY]
    train_set = ImageDataset(data.records("train"), store, task.classes,
                             build_pipeline(ctx.modality.augment, task.spec.size, "modality.augment"))
    cfg = TrainerConfig(max_steps=2 * args.steps, batch_size=args.batch_size, lr=3e-3, warmup_ratio=0.1,
                        device=args.device, progress=False, log_every=args.steps, resume="never")
    info = RunInfo(run_dir=run_dir, modality="vision", name="bench", config_yaml="")
    with Engine(cfg, info, seed=0) as engine:
        train_classifier(engine, task, train_set, channels_last=engine.device.type == "cuda")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["metrics"]["items_per_s"] for r in rows if r["kind"] == "train"][-1:]  # the timed window


def plain_round(ctx: RunContext, modality: VisionModality, data, args: argparse.Namespace) -> list[float]:
    """Per-step images/s of a plain timm + torch loop (same model, data, device, precision) over
    the second half of ``2 * steps`` steps."""
    task = modality.build_task(ctx, data)
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    store = ctx.extras[STORE_KEY]
    train_set = ImageDataset(data.records("train"), store, task.classes,
                             build_pipeline(ctx.modality.augment, task.spec.size, "modality.augment"))
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                         pin_memory=device.type == "cuda")
    memory_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    task = task.to(device, memory_format=memory_format).train()
    params = [p for p in task.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.05},
                                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                                  lr=3e-3, fused=device.type == "cuda" or None)
    total, warmup = 2 * args.steps, max(1, int(0.1 * 2 * args.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, max(0, s - warmup) / max(1, total - warmup)))))
    step, images, started = 0, 0, 0.0
    while step < total:
        for batch in loader:
            if step == args.steps:  # the timed window starts, as the engine's second log window does
                _sync(device)
                started, images = time.perf_counter(), 0
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast(precision, device):
                out = task(batch)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            loss = out["loss"].item()  # a host sync per step, as the engine's non-finite check does
            images += batch["target"].shape[0]
            step += 1
            if step == total:
                break
    _sync(device)
    assert math.isfinite(loss)
    return [images / (time.perf_counter() - started)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--steps", type=int, default=50, help="timed optimizer steps per round (after as many warmup)")
    parser.add_argument("--model", default="vit", help="shipped model group: vit | efficientnet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each loop")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ctx, modality, data = load(args.model, Path(tmp))
        plugin: list[float] = []
        plain: list[float] = []
        for i in range(args.rounds):
            plain += plain_round(ctx, modality, data, args)
            plugin += plugin_round(ctx, modality, data, args, Path(tmp) / f"round{i}")
            print(f"round {i + 1}: plugin {statistics.median(plugin):.0f} img/s, "
                  f"plain {statistics.median(plain):.0f} img/s (medians so far)", flush=True)
    device = resolve_device(args.device)
    print(f"model={args.model} device={device} ({resolve_precision('auto', device)}) batch={args.batch_size} "
          f"steps={args.steps}x2 rounds={args.rounds}")
    print(f"plugin loop on the engine: {statistics.median(plugin):.0f} images/s (median of {len(plugin)} rounds)")
    print(f"plain timm + torch loop:   {statistics.median(plain):.0f} images/s (median of {len(plain)} rounds)")
    print(f"ratio plugin/plain: {statistics.median(plugin) / statistics.median(plain):.3f}")


if __name__ == "__main__":
    main()
