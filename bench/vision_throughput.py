"""Training throughput of the vision plugin on the engine vs timm's own training pieces.

Both sides read the same image folder from disk (class subfolders; JPEG decode per item, no
decoded-image cache unless ``--cache-mb``), with ``--workers`` DataLoader workers each, and train
the same timm model (random weights) at the same batch size, precision (fp32 on a CPU, bf16
autocast on CUDA), gradient clipping (1.0), learning rate, weight decay and schedule shape
(linear warm-up over 10% of the steps, then cosine), with fused AdamW on both sides.

Ours (the plugin's own path): ``prepared([+modality=vision, model=..., data.root=...])``, its
``load_data`` (the core folder reader, every file probed once by the plugin's decoder), its
``ImageDataset`` (:func:`framework.media.images.decode_image`: Pillow decode, EXIF rotation, RGB,
then the albumentations pipeline ``RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3, bilinear)``
on the decoded image (a pipeline that starts with a crop to the input size skips the decoder's
resize when the image is not cached) + ``HorizontalFlip(p=0.5)``; uint8 batches, normalised on the
device), ``train_classifier`` on the :class:`~framework.training.Engine` (seeded resumable
sampler, non-finite-loss check, metric logging, final checkpoint).

The peer (timm's pieces as a user of timm's ``train.py`` gets them): ``timm.data.create_dataset``
(folder reader) and ``create_loader(is_training=True)``: Pillow decode, RGB,
``RandomResizedCropAndInterpolation(scale 0.08-1, ratio 3/4-4/3, bilinear)`` on the full-size
image, ``RandomHorizontalFlip(0.5)``, colour jitter off, uint8 ``fast_collate`` and timm's
``PrefetchLoader`` (device copy, normalisation), ``persistent_workers``; the model from the same
``timm.create_model`` call; ``timm.optim.create_optimizer_v2(model, "adamw", fused=True)`` (timm
hands ``fused`` to ``torch.optim.AdamW``; no weight decay on biases and norms, as the engine);
``timm.scheduler.create_scheduler_v2("cosine", warmup_prefix=True)`` stepped per update;
``nn.CrossEntropyLoss`` (label smoothing and mixup off on both sides); ``clip_grad_norm_(1.0)``;
a host read of the loss per step (as the engine's non-finite check). ``--channels-last`` (the
default on CUDA) converts weights and inputs on both sides.

Both sides do the same pixel work: decode the JPEG (at full size under 448 px; larger JPEGs
decode at reduced DCT scale on our side, see ``--sides``), crop, resize the crop once (ours:
OpenCV bilinear through albumentations; timm: Pillow bilinear).

Timing: each side runs ``2 * steps`` optimizer steps and times the second half, data loading
included (worker start-up and first-step costs fall in the untimed half): for the engine, the
``items_per_s`` it logs for that window (``log_every = steps``); for timm, images consumed over
``perf_counter`` time from the end of step ``steps`` to the end of the last step. Sides run in
paired rounds (:func:`paired.run_rounds`, alternating order, same process, same threads); the
figure is the median of the rounds' ratios ours/timm (> 1: ours faster). Training memory is
:class:`common.TrainingMemory` around each side's training (on a CPU: the main process's resident
set, after freed heap pages are handed back so the other side's earlier peak is not reused
unseen; DataLoader workers are other processes).

``--loader-only`` times the data path alone (no model): images/s of ours (the engine's
DataLoader over the plugin's ``ImageDataset``, batches moved to the device) and timm's
(``create_loader`` incl. its prefetcher's normalisation) at the given ``--workers``.

``--model vit | efficientnet`` train the shipped tiny groups on the bundled digits (32 px PNGs);
a timm name (``vit_small_patch16_224``, ``efficientnet_b0``, ``resnet50``...) trains at
``--image-size`` (224) on ``--data DIR`` (class folders under ``DIR/train``), or on a temporary
folder of generated 256-512 px JPEGs. ``--unfused`` gives the timm side torch's default
(per-tensor) AdamW instead.

Usage::

    python bench/vision_throughput.py                                   # ViT-S/16, 224 px, CPU sizes
    python bench/vision_throughput.py --model resnet50 --loader-only --workers 2
    python bench/vision_throughput.py --device cuda --batch-size 128 --steps 20 --workers 8
    python bench/vision_throughput.py --model vit --image-size 32 --steps 50 --rounds 5
    python bench/vision_throughput.py --smoke --json /tmp/vision.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (common, paired) when imported by a test
from common import TrainingMemory, add_common_args, apply_threads, machine, write_json  # noqa: E402
from paired import run_rounds, sync  # noqa: E402

from framework.media.augment import build_pipeline  # noqa: E402
from framework.media.images import ImageSpec  # noqa: E402
from framework.modality import RunContext  # noqa: E402
from framework.run_info import RunInfo  # noqa: E402
from framework.testing import prepared  # noqa: E402
from framework.training import Engine, TrainerConfig  # noqa: E402
from framework.training.device import autocast, move_to_device, resolve_device, resolve_precision  # noqa: E402
from plugins.vision.dataset import ImageDataset  # noqa: E402
from plugins.vision.loop import train_classifier  # noqa: E402
from plugins.vision.model import build_model, input_spec  # noqa: E402
from plugins.vision.modality import STORE_KEY, VisionModality  # noqa: E402

DEFAULT_MODEL = "vit_small_patch16_224"
SHIPPED = ("vit", "efficientnet")  # model groups trained on the bundled digits
DIGITS = Path(__file__).resolve().parents[1] / "examples" / "data" / "digits"
LR, WEIGHT_DECAY, WARMUP_RATIO, CLIP = 3e-3, 0.05, 0.1, 1.0
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)  # random resized crop on both sides (timm's defaults)


@dataclass
class Setup:
    """What both sides share: the plugin's run context and data, the image folder, the sizes."""

    ctx: RunContext
    modality: VisionModality
    data: Any
    root: Path  # the folder both sides read: ROOT/train/CLASS/*
    spec: ImageSpec
    device: torch.device
    precision: str
    channels_last: bool
    memory: dict[str, list[float]] = field(default_factory=lambda: {"ours": [], "timm": []})


def write_jpegs(root: Path, count: int, classes: int, sides: tuple[int, int], seed: int = 0) -> Path:
    """Write ``count`` JPEGs (quality 90, sides drawn from ``sides``) to ``root/train/cNN/``, round-robin
    over ``classes`` class folders, plus the data card the plugin's reader asks for; returns ``root``.

    The pixels are smooth colour fields with fine grain, so a file's size and decode cost are those
    of a photograph rather than of flat colour or white noise.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / "train" / f"c{c:02d}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = (int(x) for x in rng.integers(sides[0], sides[1] + 1, size=2))
        coarse = rng.integers(0, 256, size=(height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.int16)
        grain = rng.integers(-10, 11, size=(height, width, 3), dtype=np.int16)
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)  # (H, W, 3)
        Image.fromarray(pixels).save(root / "train" / f"c{i % classes:02d}" / f"{i:05d}.jpg", quality=90)
    (root / "datacard.yaml").write_text(
        "name: vision-bench\ndescription: generated colour fields for bench/vision_throughput.py\n"
        "sources:\n  - generated by bench/vision_throughput.py (numpy, seed 0)\nlicense: CC0\n")
    return root


def setup(args: argparse.Namespace, tmp: Path) -> Setup:
    """The plugin's context (the config ``python -m framework`` composes) and data for ``args``."""
    shipped = args.model in SHIPPED
    if shipped:
        root = DIGITS
        overrides = [f"model={args.model}"]
    else:
        root = args.data or write_jpegs(tmp / "images", args.images, args.classes, tuple(args.sides))
        overrides = ["model=vit", f"model.name={args.model}"]
    if args.image_size:
        overrides.append(f"model.image_size={args.image_size}")
    device = resolve_device(args.device)
    channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
    overrides += [
        "+modality=vision", f"data.root={root}", "data.train=train", "data.val=null", "data.test=null",
        # The augmentation both sides do: random resized crop + horizontal flip, nothing else.
        "modality.augment.RandomResizedCrop.scale=[0.08,1.0]",
        f"modality.augment.RandomResizedCrop.ratio=[{RATIO[0]},{RATIO[1]}]",
        "modality.augment.HorizontalFlip={p:0.5}", "modality.augment.Affine=null", "modality.augment.ColorJitter=null",
        "modality.label_smoothing=0.0", f"modality.cache_limit_mb={args.cache_mb}",
        f"modality.channels_last={str(channels_last).lower()}",
    ]
    modality, ctx = prepared(overrides, tmp / "run")
    data = modality.load_data(ctx)
    precision = resolve_precision(args.precision, device)
    return Setup(ctx, modality, data, Path(root), input_spec(ctx.model), device, precision,
                 channels_last)


def train_set(s: Setup) -> ImageDataset:
    """The plugin's training dataset, as ``VisionModality.train`` builds it."""
    task_classes = s.data.classes
    pipeline = build_pipeline(s.ctx.modality.augment, s.spec.size, "modality.augment")
    return ImageDataset([r for r in s.data.records("train") if r.label is not None], s.ctx.stash[STORE_KEY],
                        task_classes, pipeline)


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so that a
    side's resident-set growth (:class:`common.TrainingMemory` on a CPU) does not depend on what the
    other side freed before it in this process; a no-op where there is no glibc."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def trainer_config(s: Setup, args: argparse.Namespace, steps: int) -> TrainerConfig:
    """The engine's settings for ``steps`` steps: the timm side's batch, lr, decay, warm-up, clipping."""
    return TrainerConfig(max_steps=steps, batch_size=args.batch_size, lr=LR, weight_decay=WEIGHT_DECAY,
                         warmup_ratio=WARMUP_RATIO, clip_grad_norm=CLIP, device=str(s.device), precision=s.precision,
                         num_workers=args.workers, progress=False, log_every=args.steps, resume="never")


def ours_train(s: Setup, args: argparse.Namespace, run_dir: Path) -> float:
    """Images/s of the plugin's loop on the engine over the second half of ``2 * steps`` steps."""
    task = s.modality.build_task(s.ctx, s.data)
    info = RunInfo(run_dir=run_dir, modality="vision", name="bench", config_yaml="")
    release_freed_memory()
    with TrainingMemory(s.device) as memory:
        with Engine(trainer_config(s, args, 2 * args.steps), info, seed=0) as engine:
            train_classifier(engine, task, train_set(s), channels_last=s.channels_last)
    s.memory["ours"].append(memory.peak_mib)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["metrics"]["items_per_s"] for r in rows if r["kind"] == "train"][-1]  # the timed window


def timm_loader(s: Setup, args: argparse.Namespace) -> Any:
    """timm's training loader over the same folder: ``create_dataset`` + ``create_loader``."""
    from timm.data import create_dataset, create_loader

    dataset = create_dataset("", root=str(s.root), split="train", is_training=True)
    return create_loader(
        dataset, input_size=(3, *s.spec.size), batch_size=args.batch_size, is_training=True,
        scale=SCALE, ratio=RATIO, hflip=0.5, color_jitter=None, interpolation="bilinear",
        mean=s.spec.mean, std=s.spec.std, num_workers=args.workers, device=s.device,
        pin_memory=s.device.type == "cuda", use_prefetcher=True, persistent_workers=True,
    )


def timm_train(s: Setup, args: argparse.Namespace) -> float:
    """Images/s of a loop on timm's pieces over the second half of ``2 * steps`` steps."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    loader = timm_loader(s, args)
    memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
    model = build_model(s.ctx.model, len(s.data.classes)).to(s.device, memory_format=memory_format).train()
    optimizer = create_optimizer_v2(model, "adamw", lr=LR, weight_decay=WEIGHT_DECAY,
                                    **({} if args.unfused else {"fused": True}))
    total = 2 * args.steps
    warmup = max(1, int(WARMUP_RATIO * total))
    scheduler, _ = create_scheduler_v2(optimizer, "cosine", num_epochs=total - warmup, warmup_epochs=warmup,
                                       warmup_prefix=True, warmup_lr=0.0, step_on_epochs=False, updates_per_epoch=1)
    loss_fn = nn.CrossEntropyLoss()
    step, images, started, loss = 0, 0, 0.0, float("nan")
    release_freed_memory()
    with TrainingMemory(s.device) as memory:
        while step < total:
            for inputs, target in loader:  # on the device, normalised by timm's prefetcher
                if s.channels_last:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                with autocast(s.precision, s.device):
                    out = loss_fn(model(inputs), target)
                optimizer.zero_grad(set_to_none=True)
                out.backward()
                nn.utils.clip_grad_norm_(model.parameters(), CLIP)
                optimizer.step()
                step += 1
                scheduler.step_update(num_updates=step)
                loss = out.item()
                images += target.shape[0]
                if step == args.steps:
                    sync(s.device)
                    started, images = time.perf_counter(), 0
                if step == total:
                    break
        sync(s.device)
    s.memory["timm"].append(memory.peak_mib)
    if not np.isfinite(loss):
        raise RuntimeError(f"timm loop's loss is not finite ({loss})")
    return images / (time.perf_counter() - started)


def timed_batches(batches: Any, steps: int, device: torch.device, count: Any) -> float:
    """Images/s of batches ``steps + 1 .. 2 * steps`` of ``batches`` (re-iterated per epoch)."""
    seen, images, started = 0, 0, 0.0
    while seen < 2 * steps:
        for batch in batches:
            images += count(batch)
            seen += 1
            if seen == steps:
                sync(device)
                started, images = time.perf_counter(), 0
            if seen == 2 * steps:
                break
    sync(device)
    return images / (time.perf_counter() - started)


def ours_loader(s: Setup, args: argparse.Namespace, run_dir: Path) -> float:
    """Images/s of the engine's DataLoader over the plugin's dataset, batches moved to the device."""
    info = RunInfo(run_dir=run_dir, modality="vision", name="bench", config_yaml="")
    with Engine(trainer_config(s, args, 2 * args.steps), info, seed=0) as engine:
        loader = engine.dataloader(train_set(s), shuffle=True)
        on_device = (move_to_device(b, s.device, non_blocking=s.device.type == "cuda") for b in _forever(loader))
        return timed_batches(on_device, args.steps, s.device, lambda b: b["target"].shape[0])


def _forever(loader: Any) -> Any:
    while True:
        yield from loader


def timm_loader_rate(s: Setup, args: argparse.Namespace) -> float:
    """Images/s of timm's ``create_loader`` (its prefetcher copies to the device and normalises)."""
    return timed_batches(timm_loader(s, args), args.steps, s.device, lambda b: b[1].shape[0])


def _rate(value: float) -> str:
    """Images/s with three significant figures below 100 (a CPU's ViT-S), one decimal above."""
    return f"{value:.1f}" if value >= 100 else f"{value:.3g}"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, model=DEFAULT_MODEL, batch_size=16, steps=5)
    parser.add_argument("--image-size", type=int, default=None,
                        help="input side in pixels (default 224 for a timm name; the shipped group's 32 for vit/efficientnet)")
    parser.add_argument("--data", type=Path, default=None,
                        help="image folder with class subfolders under DATA/train (default: generated JPEGs)")
    parser.add_argument("--images", type=int, default=0,
                        help="JPEGs to generate (default: enough for 2*steps batches plus one, one epoch)")
    parser.add_argument("--classes", type=int, default=10, help="class folders of the generated JPEGs")
    parser.add_argument("--sides", type=int, nargs=2, default=[256, 512], metavar=("MIN", "MAX"),
                        help="range of the generated JPEGs' width and height in pixels")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers on both sides")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds (each runs both sides)")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA, else fp32) | fp32 | bf16")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels-last weights and inputs on both sides (default: on CUDA only)")
    parser.add_argument("--cache-mb", type=float, default=0,
                        help="the plugin's decoded-image cache (modality.cache_limit_mb); 0 decodes every item "
                             "from disk as timm does (the shipped config caches up to 2048 MB)")
    parser.add_argument("--loader-only", action="store_true",
                        help="time the JPEG decode + augment loaders alone (no model)")
    parser.add_argument("--unfused", action="store_true",
                        help="torch's default (per-tensor) AdamW on the timm side instead of the fused kernel")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (2 steps, 32 px, 16 small JPEGs, 1 round, no workers; timm's test_vit unless "
                             "--model names another): proves it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        if args.model == DEFAULT_MODEL:
            args.model = "test_vit"  # timm's 0.3M-parameter test ViT: seconds, not minutes
        args.steps, args.rounds, args.batch_size, args.workers = 1, 1, 4, 0
        args.image_size, args.images, args.classes, args.sides = 32, 16, 2, [40, 64]
    if args.model not in SHIPPED and not args.image_size:
        args.image_size = 224
    if not args.images:
        args.images = (2 * args.steps + 1) * args.batch_size
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the bench; returns (and with ``--json`` writes) every printed figure."""
    args = parse_args(argv)
    threads = apply_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        s = setup(args, tmp)
        if args.loader_only:
            result = run_rounds(args.rounds, lambda i: timm_loader_rate(s, args),
                                lambda i: ours_loader(s, args, tmp / f"round{i}"), "img/s")
        else:
            result = run_rounds(args.rounds, lambda i: timm_train(s, args),
                                lambda i: ours_train(s, args, tmp / f"round{i}"), "img/s")
        files = len(s.data.records("train"))
    import timm

    optimizer = "torch AdamW per-tensor (--unfused)" if args.unfused else "create_optimizer_v2('adamw', fused=True)"
    peer = (f"timm {timm.__version__}: create_dataset + create_loader (RandomResizedCrop {SCALE} bilinear + hflip 0.5, "
            f"no colour jitter, prefetcher)" + ("" if args.loader_only else
            f", {optimizer}, CosineLRScheduler (warmup {WARMUP_RATIO:.0%}), CrossEntropyLoss, clip {CLIP}"))
    what = "loader only (decode + augment + collate + device copy)" if args.loader_only else "training"
    print(f"{what}: model={args.model} image_size={s.spec.size[0]} device={s.device} ({s.precision}) "
          f"batch={args.batch_size} steps={args.steps}x2 rounds={args.rounds} workers={args.workers} "
          f"threads={threads} channels_last={s.channels_last} images={files} from {s.root.name or s.root} "
          f"cache_mb={args.cache_mb} load={machine()['load_average']}")
    print(f"peer: {peer}")
    for name, rates in (("ours (plugin on the engine)" if not args.loader_only else "ours (engine DataLoader)",
                         result.plugin), ("timm", result.baseline)):
        print(f"{name}: {_rate(statistics.median(rates))} images/s (median of {len(rates)}; "
              f"{_rate(min(rates))}-{_rate(max(rates))})")
    ratios = result.ratios
    print(f"ratio ours/timm: {statistics.median(ratios):.3f} (median of {len(ratios)} paired rounds; "
          f"min-max {min(ratios):.3f}-{max(ratios):.3f}; > 1: ours faster)")
    figures: dict[str, Any] = {
        "bench": "vision_throughput", "mode": "loader_only" if args.loader_only else "train",
        "model": args.model, "image_size": s.spec.size[0], "device": str(s.device), "precision": s.precision,
        "batch_size": args.batch_size, "steps": args.steps, "rounds": args.rounds, "workers": args.workers,
        "channels_last": s.channels_last, "cache_mb": args.cache_mb, "images": files, "peer": peer,
        "ours_images_per_s": statistics.median(result.plugin), "timm_images_per_s": statistics.median(result.baseline),
        "ratio": statistics.median(result.ratios), "ratio_min": min(result.ratios), "ratio_max": max(result.ratios),
        "rounds_ours": result.plugin, "rounds_timm": result.baseline, "smoke": args.smoke,
    }
    if not args.loader_only:
        ours_mib, timm_mib = statistics.median(s.memory["ours"]), statistics.median(s.memory["timm"])
        print(f"training memory ({'CUDA allocated' if s.device.type == 'cuda' else 'CPU resident, main process'}, "
              f"median): ours {ours_mib:.0f} MiB, timm {timm_mib:.0f} MiB, ratio ours/timm {ours_mib / timm_mib:.2f}")
        figures.update(ours_memory_mib=ours_mib, timm_memory_mib=timm_mib, memory_ratio=ours_mib / timm_mib)
    write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
