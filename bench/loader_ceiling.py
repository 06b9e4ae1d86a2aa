"""The JPEG loader ceiling: images/s the vision plugin's input pipeline delivers, with no model.

A training loop on images cannot go faster than its loader. This bench writes a folder of
``--files`` JPEGs (``--image-size`` pixels square: ``audit_data.photo``'s photo-like images, which
cost what a photo of their size costs to decode), then reads ``--batch-size`` batches of
them through what the vision plugin trains on: the engine's loader
(:func:`framework.training.data.make_dataloader`: seeded batches, pinned memory on CUDA), the
plugin's :class:`plugins.vision.dataset.ImageDataset` over an uncached
:class:`framework.media.images.ImageStore` (each image decoded from disk on every read) and the
shipped ``modality.augment`` pipeline (``plugins/vision/conf/modality/vision.yaml``). The folder's
files are read in turn as often as the batches need, so the page cache holds them: the figure is
decoding and augmenting, not disk speed.

For each ``--workers`` count a fresh loader yields one untimed batch (worker start-up), then
``max(4, 3 * workers)`` timed batches: images/s over those. Usage::

    python bench/loader_ceiling.py --workers 0 4 8 14 --device cuda
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from audit_data import write_photos
from common import apply_threads, write_json
from omegaconf import OmegaConf

from framework.data.records import Record
from framework.media.augment import build_pipeline
from framework.media.images import ImageStore
from framework.training.data import make_dataloader
from framework.training.device import resolve_device
from plugins.vision.dataset import ImageDataset

ROOT = Path(__file__).resolve().parents[1]
VISION_YAML = ROOT / "plugins" / "vision" / "conf" / "modality" / "vision.yaml"


def dataset(paths: list[Path], items: int, size: int) -> ImageDataset:
    """The plugin's training dataset over ``items`` reads of ``paths`` (in turn), decoded on every read."""
    records = [Record(id=str(i), split="train", source=str(paths[i % len(paths)]), media=paths[i % len(paths)],
                      label="a") for i in range(items)]
    augment = OmegaConf.to_container(OmegaConf.load(VISION_YAML).modality.augment)
    pipeline = build_pipeline(augment, (size, size), "modality.augment")  # type: ignore[arg-type]
    return ImageDataset(records, ImageStore((size, size), "stretch", cache_limit_mb=0), ["a"], pipeline)


def images_per_s(paths: list[Path], workers: int, args: argparse.Namespace, device: torch.device) -> float:
    """Images/s of a fresh loader with ``workers`` workers, after its first batch."""
    batches = max(4, 3 * workers)
    data = dataset(paths, (batches + 1) * args.batch_size, args.image_size)
    loader = make_dataloader(data, batch_size=args.batch_size, seed=0, shuffle=False, num_workers=workers,
                             pin_memory=device.type == "cuda")
    it = iter(loader)
    next(it)  # worker start-up and the first prefetch
    start, images = time.perf_counter(), 0
    for batch in it:
        images += batch["image"].shape[0]
    return images / (time.perf_counter() - start)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8, 14], help="loader worker counts to measure")
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    parser.add_argument("--image-size", type=int, default=224, help="JPEG and model input side in pixels (default 224)")
    parser.add_argument("--files", type=int, default=256, help="distinct JPEG files written (default 256)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: one per core, torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (cuda: pinned memory, as the engine)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (8 files of 32 px, batch 4, 0 and 2 workers)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.workers, args.batch_size, args.image_size, args.files = [0, 2], 4, 32, 8
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    threads = apply_threads(args.threads)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i:05d}.jpg" for i in range(args.files)]
        write_photos(paths, seed=0, sides=(args.image_size, args.image_size))
        kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"{args.files} JPEGs of {args.image_size} px ({kib:.0f} KiB each), batch {args.batch_size}, "
              f"shipped vision augmentation, device {device}, {os.cpu_count()} cores, torch_threads={threads}")
        rates = {}
        for workers in args.workers:
            rates[workers] = images_per_s(paths, workers, args, device)
            print(f"workers {workers:2d}: {rates[workers]:9.1f} images/s", flush=True)
    figures = {"bench": "loader_ceiling", "device": str(device), "image_size": args.image_size,
               "batch_size": args.batch_size, "files": args.files, "jpeg_kib": kib, "threads": threads,
               "smoke": args.smoke, "images_per_s": {str(w): r for w, r in rates.items()}}
    write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
