"""Training throughput of the vision plugin's loop on the engine vs a plain timm + torch loop.

Both loops train the same model (built from the shipped ``model=`` group) on the same data (the
bundled digits, decoded and cached by the plugin, augmented by the shipped pipeline), on the same
device, at the same precision, with AdamW, a warmup + cosine schedule and gradient clipping. The
plugin's loop adds what the engine gives: seeded augmentation, a resumable sampler,
non-finite-loss checks, metric logging and the final checkpoint.

Each round runs ``2 * steps`` optimizer steps per loop and times the second half as one window
(the first half warms up kernels, caches and the allocator), data loading included: for the
engine, the ``items_per_s`` it logs once for that window (``log_every = steps``); for the plain
loop, images over ``perf_counter`` time from the end of step ``steps`` to the end of the last
step, the same window. A round runs both loops back to back, in alternating order, and yields
one paired ratio: on a shared machine a burst from another process then hits both loops of a
round alike. The figure reported is the median of the rounds' ratios, with their min-max.

The plain loop is the one a competent user writes: torch's default AdamW (the per-tensor loop on
a CPU, fused on CUDA), ``clip_grad_norm_``, a ``LambdaLR`` warmup + cosine, a host read of the
loss per step. ``--fused-baseline`` gives it the fused AdamW the engine uses as well, to show how
much of the difference is the optimizer kernel and how much the rest of the loop.

Usage::

    python bench/vision_throughput.py --device cpu --steps 50 --model vit --rounds 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from paired import plain_loop, run_rounds

from framework.hookspecs import RunInfo
from framework.modality import RunContext
from framework.testing import prepared
from framework.training import Engine, TrainerConfig
from framework.training.device import autocast, resolve_device, resolve_precision
from framework.media.augment import build_pipeline
from plugins.vision.dataset import ImageDataset
from plugins.vision.loop import train_classifier
from plugins.vision.modality import STORE_KEY, VisionModality

def load(model_group: str, tmp: Path) -> tuple[RunContext, VisionModality, object]:
    """The config ``python -m framework +modality=vision model=GROUP`` runs, and its data, decoded once."""
    modality, ctx = prepared(["+modality=vision", f"model={model_group}"], tmp)
    return ctx, modality, modality.load_data(ctx)  # type: ignore[return-value]


def plugin_round(ctx: RunContext, modality: VisionModality, data, args: argparse.Namespace,
                 run_dir: Path) -> list[float]:
    """Per-step images/s of the plugin's loop over the second half of ``2 * steps`` steps."""
    task = modality.build_task(ctx, data)
    store = ctx.stash[STORE_KEY]
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
    store = ctx.stash[STORE_KEY]
    train_set = ImageDataset(data.records("train"), store, task.classes,
                             build_pipeline(ctx.modality.augment, task.spec.size, "modality.augment"))
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                         pin_memory=device.type == "cuda")
    memory_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    task = task.to(device, memory_format=memory_format).train()

    def forward(batch: dict) -> torch.Tensor:
        with autocast(precision, device):
            return task(batch)["loss"]

    return [plain_loop([p for p in task.parameters() if p.requires_grad], loader, forward, steps=args.steps, lr=3e-3,
                       weight_decay=0.05, warmup_ratio=0.1, device=device, items_key="target",
                       fused=not args.unfused)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--steps", type=int, default=50, help="timed optimizer steps per round (after as many warmup)")
    parser.add_argument("--model", default="vit", help="shipped model group: vit | efficientnet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9, help="paired rounds (each runs both loops)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for both loops (0: torch's default; 1 is steadiest on a shared box)")
    parser.add_argument("--unfused", action="store_true",
                        help="give the plain loop torch's default (per-tensor) AdamW instead of the fused kernel both sides use")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ctx, modality, data = load(args.model, Path(tmp))
        result = run_rounds(args.rounds, lambda i: plain_round(ctx, modality, data, args)[0],
                            lambda i: plugin_round(ctx, modality, data, args, Path(tmp) / f"round{i}")[0], "img/s")
    device = resolve_device(args.device)
    baseline = "plain timm + torch loop" + (" (unfused AdamW)" if args.unfused else " (fused AdamW)")
    print(f"model={args.model} device={device} ({resolve_precision('auto', device)}) batch={args.batch_size} "
          f"steps={args.steps}x2 rounds={args.rounds} torch_threads={torch.get_num_threads()}")
    print(result.summary("images/s", baseline, "plugin/plain"))

if __name__ == "__main__":
    main()
