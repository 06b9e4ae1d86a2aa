"""Training throughput and memory of the alignment plugin on the engine vs open_clip's own training loop.

``--model clip-small`` (the default, sized for a CPU) and ``--model vit-b-32`` (open_clip's
ViT-B-32 shape, for a GPU) train the same CLIP-shaped dual encoder on both sides, with random
weights:

* **peer: open_clip** (``open-clip-torch``, the ``bench`` extra) as its users train it: the model
  from ``open_clip.create_model`` with a model config of the shape (a ViT image tower, its causal
  text transformer, learned ``logit_scale`` initialised to ``ln(1/0.07)``, clamped to ``ln 100``
  after each step), ``open_clip.ClipLoss``, AdamW with open_clip's parameter groups (no weight
  decay on gains, biases and ``logit_scale``) and betas ``(0.9, 0.98)``, eps ``1e-6``, the fused
  kernel (open_clip's own script builds the unfused one), its ``cosine_lr`` schedule with warm-up,
  gradient clipping at 1.0, and ``open_clip_train.train.train_one_epoch`` itself as the loop. Its
  images go through open_clip's training transform (``open_clip.image_transform``: random resized
  crop, to tensor, normalise) in the loader, as open_clip's datasets do.
* **ours**: ``python -m framework +modality=alignment`` with the same shapes: the image tower is
  timm's ``vit_base_patch32_clip_224`` (open_clip's ViT: pre-norm, class token, final norm) with
  the width, depth, heads, patch and input size of the shape; the text tower is transformers'
  ``CLIPTextModel`` built from config (``model.text.architecture=clip_text_model``, GELU, pooled
  at the end-of-text token) with the same width, depth, heads, context and vocabulary; linear
  projections without bias to the same embedding width. The plugin's own loop
  (:func:`plugins.alignment.loop.train_alignment`) on the engine: its augmentation (albumentations
  on the uint8 pixels, normalised on the device), seeded sampling, non-finite-loss checks, metric
  logging and the final checkpoint.

Both sides read the same images (the bundled shapes, decoded once at ``--image-size`` and kept in
memory; the training manifest is repeated to a whole number of batches, so no step sees a short
batch) and the same caption ids (the bundled tokenizer, padded to ``--seq-len``; the embedding
table has the shape's vocabulary, CLIP's 49408 rows), on the same device, precision and threads,
with the same learning rate, weight decay, warm-up ratio and clipping.

``--model tiny`` keeps the shipped ``model=dual_tiny`` towers (a 2-block ViT and a 2-layer BERT,
0.3M parameters), which open_clip cannot build: its peer is a plain torch loop
(:func:`paired.plain_loop`) over the same task and pairs.

Each side runs ``2 * steps`` optimizer steps in a fresh subprocess and times the second half (the
first warms up), data loading included: for the engine, the ``items_per_s`` it logs for that
window (``log_every = steps``); for open_clip and the plain loop, pairs over the time from the end
of step ``steps`` to the end of the last step. Training memory is
:class:`common.TrainingMemory` around each side's training (model weights placed before it). A
round runs both sides, in alternating order; the figures are the medians of the rounds' ratios
``ours / peer`` (> 1: ours is faster; memory < 1: ours takes less).

Usage::

    python bench/alignment_throughput.py                              # clip-small on a CPU
    python bench/alignment_throughput.py --model vit-b-32 --device cuda --batch-size 256
    python bench/alignment_throughput.py --model tiny                 # the shipped towers vs a plain loop
    python bench/alignment_throughput.py --smoke --json out.json      # seconds: proves it runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Optional

import torch
from common import TrainingMemory, add_common_args, apply_threads, machine, write_json
from paired import Paired, plain_loop, sync

ROOT = Path(__file__).resolve().parents[1]
SHAPES_DATA = ROOT / "examples" / "data" / "shapes"
CLIP_VOCAB = 49408  # rows of open_clip's (CLIP's) token-embedding table
WARMUP_RATIO, CLIP_GRAD = 0.1, 1.0


@dataclass(frozen=True)
class Shape:
    """A CLIP dual encoder's shape, as open_clip's model configs give it (heads of 64 channels
    in the image tower, as open_clip's ``head_width``)."""

    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    text_width: int
    text_heads: int
    text_layers: int
    context_length: int
    embed_dim: int
    vocab_size: int = CLIP_VOCAB

    def open_clip_config(self) -> dict[str, Any]:
        """open_clip's model config of this shape (``embed_dim``, ``vision_cfg``, ``text_cfg``)."""
        return {"embed_dim": self.embed_dim,
                "vision_cfg": {"image_size": self.image_size, "layers": self.vision_layers,
                               "width": self.vision_width, "patch_size": self.patch_size},
                "text_cfg": {"context_length": self.context_length, "vocab_size": self.vocab_size,
                             "width": self.text_width, "heads": self.text_heads, "layers": self.text_layers}}

    def overrides(self) -> list[str]:
        """The ``model=dual_tiny`` overrides that build this shape in the alignment plugin."""
        text = {"hidden_size": self.text_width, "num_hidden_layers": self.text_layers,
                "num_attention_heads": self.text_heads, "intermediate_size": 4 * self.text_width,
                "hidden_act": "gelu", "vocab_size": self.vocab_size,
                "max_position_embeddings": self.context_length}
        image = {"patch_size": self.patch_size, "embed_dim": self.vision_width, "depth": self.vision_layers,
                 "num_heads": self.vision_width // 64}
        return (["model.image.name=vit_base_patch32_clip_224", f"model.image.image_size={self.image_size}",
                 *(f"++model.image.kwargs.{k}={v}" for k, v in image.items()),
                 "model.text.architecture=clip_text_model", "model.text.pooling=last",
                 f"model.text.max_length={self.context_length}",
                 *(f"++model.text.config.{k}={v}" for k, v in text.items()),
                 f"model.embed_dim={self.embed_dim}"])


#: ``--model`` names built on both sides; ``vit-b-32`` is open_clip's ``ViT-B-32.json``.
SHAPES = {
    "clip-small": Shape(image_size=96, patch_size=16, vision_width=256, vision_layers=4, text_width=256,
                        text_heads=4, text_layers=4, context_length=32, embed_dim=256),
    "vit-b-32": Shape(image_size=224, patch_size=32, vision_width=768, vision_layers=12, text_width=512,
                      text_heads=8, text_layers=12, context_length=77, embed_dim=512),
}
TINY = "tiny"
#: Learning rate and weight decay: open_clip's defaults for ViT models; the shipped run's for tiny.
HYPER = {"clip": (5e-4, 0.2), TINY: (2e-3, 0.05)}


def shape_of(args: argparse.Namespace) -> Shape:
    """The ``--model`` shape with ``--image-size`` / ``--seq-len`` applied."""
    base = SHAPES[args.model]
    return Shape(**{**asdict(base), "image_size": args.image_size or base.image_size,
                    "context_length": args.seq_len or base.context_length})


def precision_of(args: argparse.Namespace) -> str:
    from framework.training.device import resolve_device, resolve_precision

    return resolve_precision(args.precision, resolve_device(args.device))


# --- data: the same pairs for both sides ---------------------------------------------------------

def data_root(tmp: Path, batch_size: int) -> Path:
    """A copy of the bundled shapes with the training manifest repeated to a whole number of
    batches (at least four), each copy of a line with its own id (the same image, decoded once)."""
    root = tmp / "data"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SHAPES_DATA / "images", root / "images")
    for name in ("val.jsonl", "test.jsonl", "datacard.yaml"):
        (root / name).write_text((SHAPES_DATA / name).read_text())
    lines = [json.loads(line) for line in (SHAPES_DATA / "train.jsonl").read_text().splitlines()]
    want = batch_size * max(4, math.ceil(len(lines) / batch_size))
    out = []
    for i in range(want):
        line = dict(lines[i % len(lines)])
        line["id"] = f"{line['id']}#{i // len(lines)}"
        out.append(json.dumps(line))
    (root / "train.jsonl").write_text("\n".join(out) + "\n")
    return root


def plugin_overrides(args: argparse.Namespace, root: Path) -> list[str]:
    """What ``python -m framework`` is given for the plugin's side."""
    base = ["+modality=alignment", "model=dual_tiny", f"data.root={root}"]
    if args.model == TINY:
        sizes = ([f"model.image.image_size={args.image_size}"] if args.image_size else []) + \
                ([f"model.text.max_length={args.seq_len}"] if args.seq_len else [])
        return base + sizes
    return base + [f"model.name={args.model}"] + shape_of(args).overrides()


def load(args: argparse.Namespace, tmp: Path) -> tuple[Any, Any, Any]:
    """The plugin's modality, run context and data (decoded once) for the bench's config."""
    from framework.testing import prepared

    modality, ctx = prepared(plugin_overrides(args, data_root(tmp, args.batch_size)), tmp / "run")
    return modality, ctx, modality.load_data(ctx)


def plugin_pairs(ctx: Any, task: Any, data: Any) -> Any:
    """The training pairs, exactly as the plugin's ``train`` builds them."""
    from framework.media.augment import build_pipeline
    from plugins.alignment.data import CaptionDataset, TokenCache, captions_of
    from plugins.alignment.modality import store_for

    records = data.records("train")
    tokens = TokenCache(task.tokenize, [c for r in records for c in captions_of(r)])
    augment = build_pipeline(ctx.modality.augment, task.spec.size, "modality.augment")
    return CaptionDataset(records, store_for(ctx, task), tokens, augment, sample=True)


class OpenClipPairs(torch.utils.data.Dataset):
    """The same pairs as open_clip's datasets give them: ``(image, token ids)``, the image through
    open_clip's training transform (PIL in, normalised float tensor out), one caption drawn per item."""

    def __init__(self, pairs: Any, transform: Any) -> None:
        self.pairs, self.transform = pairs, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        import random

        from PIL import Image

        options = self.pairs.captions[i]
        ids, _ = self.pairs.tokens.get(options[random.randrange(len(options))])
        return self.transform(Image.fromarray(self.pairs.store.get(self.pairs.records[i]))), ids


class WindowedLoader:
    """Exactly ``total`` batches of ``loader`` (re-iterated per epoch) with the shape open_clip's
    ``train_one_epoch`` reads (``num_batches``, ``num_samples``); marks the timed window: the
    clock starts before batch ``start`` is loaded, and pairs are counted from there on."""

    def __init__(self, loader: torch.utils.data.DataLoader, total: int, start: int, device: torch.device) -> None:
        self.loader, self.total, self.start, self.device = loader, total, start, device
        self.num_batches = total
        self.num_samples = total * int(loader.batch_size or 1)
        self.started, self.items = 0.0, 0

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.loader)
        for i in range(self.total):
            if i == self.start:
                sync(self.device)
                self.started, self.items = time.perf_counter(), 0
            try:
                batch = next(it)
            except StopIteration:
                it = iter(self.loader)
                batch = next(it)
            if i >= self.start:
                self.items += int(batch[0].shape[0])
            yield batch


# --- the sides (each in its own process) --------------------------------------------------------

def ours(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The plugin's loop on the engine: pairs/s over the timed window, training memory, last loss."""
    from framework.hookspecs import RunInfo
    from framework.training import Engine, TrainerConfig
    from framework.training.device import resolve_device
    from plugins.alignment.loop import train_alignment

    modality, ctx, data = load(args, tmp)
    task = modality.build_task(ctx, data)
    lr, wd = HYPER[TINY if args.model == TINY else "clip"]
    betas = [0.9, 0.999] if args.model == TINY else [0.9, 0.98]  # each peer's own
    device = resolve_device(args.device)
    cfg = TrainerConfig(max_steps=2 * args.steps, batch_size=args.batch_size, lr=lr, weight_decay=wd, betas=betas,
                        warmup_ratio=WARMUP_RATIO, clip_grad_norm=CLIP_GRAD, device=args.device,
                        precision=precision_of(args), num_workers=args.workers, progress=False,
                        log_every=args.steps, resume="never")
    pairs = plugin_pairs(ctx, task, data)
    task = task.to(device)
    run_dir = tmp / "engine"
    with Engine(cfg, RunInfo(run_dir=run_dir, modality="alignment", name="bench", config_yaml=""), seed=0) as engine:
        with TrainingMemory(device) as memory:
            train_alignment(engine, task, pairs)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r["metrics"] for r in rows if r["kind"] == "train"]
    return {"pairs_per_s": train[-1]["items_per_s"], "memory_mib": memory.peak_mib, "loss": train[-1]["loss"],
            "parameters": sum(p.numel() for p in task.parameters())}


def open_clip_side(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """open_clip's model, loss, optimizer, schedule and ``train_one_epoch``: pairs/s, memory, last loss."""
    import open_clip
    from open_clip_train.scheduler import cosine_lr
    from open_clip_train.train import train_one_epoch

    from framework.training.device import resolve_device

    shape = shape_of(args)
    device = resolve_device(args.device)
    modality, ctx, data = load(args, tmp)  # the same decoded images and caption ids as the plugin's side
    task = modality.build_task(ctx, data)
    pairs = plugin_pairs(ctx, task, data)
    # The caption ids are the bundled tokenizer's: open_clip pools at its end-of-text (separator) id.
    text_cfg = {**shape.open_clip_config()["text_cfg"], "pool_type": "eos", "eos_id": int(task.tokenizer.sep_token_id),
                "pad_id": int(task.tokenizer.pad_token_id)}
    del task
    (tmp / "open_clip").mkdir()
    config = tmp / "open_clip" / f"bench-{args.model}.json"
    config.write_text(json.dumps({**shape.open_clip_config(), "text_cfg": text_cfg}))
    open_clip.add_model_config(config)
    model = open_clip.create_model(config.stem, device=device, output_dict=True)
    transform = open_clip.image_transform(shape.image_size, is_train=True)
    loader = torch.utils.data.DataLoader(OpenClipPairs(pairs, transform), batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda", drop_last=True)
    total = 2 * args.steps
    window = WindowedLoader(loader, total, args.steps, device)
    lr, wd = HYPER["clip"]
    # open_clip_train.main's AdamW groups; fused, as the engine's
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
                                   {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": wd}],
                                  lr=lr, betas=(0.9, 0.98), eps=1e-6, fused=True)
    scheduler = cosine_lr(optimizer, lr, max(1, int(WARMUP_RATIO * total)), total)
    loss = LastLoss(open_clip.ClipLoss(local_loss=False, gather_with_grad=False, cache_labels=True, rank=0,
                                       world_size=1))
    run_args = SimpleNamespace(device=str(device), precision=open_clip_precision(precision_of(args)), distill=False,
                               accum_freq=1, skip_scheduler=False, horovod=False, grad_clip_norm=CLIP_GRAD,
                               log_every_n_steps=total, batch_size=args.batch_size, world_size=1, rank=0,
                               local_rank=0, wandb=False)
    with TrainingMemory(device) as memory:
        train_one_epoch(model, {"train": SimpleNamespace(dataloader=window, set_epoch=lambda epoch: None)}, loss,
                        0, optimizer, None, scheduler, None, run_args)
        sync(device)
        elapsed = time.perf_counter() - window.started
    return {"pairs_per_s": window.items / elapsed, "memory_mib": memory.peak_mib, "loss": loss.value(),
            "parameters": sum(p.numel() for p in model.parameters())}


def open_clip_precision(precision: str) -> str:
    """open_clip's name for the engine's precision: autocast to bf16 / fp16 with fp32 weights, or fp32."""
    return {"bf16": "amp_bf16", "fp16": "amp", "fp32": "fp32"}[precision]


class LastLoss:
    """Wraps ``open_clip.ClipLoss`` to keep the last loss on the device (read once, at the end)."""

    def __init__(self, loss: Any) -> None:
        self.loss, self.last = loss, None

    def __call__(self, **kwargs: Any) -> dict[str, torch.Tensor]:
        out = self.loss(**kwargs)
        self.last = sum(v for v in out.values()).detach()
        return out

    def value(self) -> float:
        return float(self.last) if self.last is not None else float("nan")


def plain_side(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """``--model tiny``'s peer: a plain torch loop over the same task and pairs."""
    from framework.training.device import autocast, resolve_device

    modality, ctx, data = load(args, tmp)
    task = modality.build_task(ctx, data)
    device = resolve_device(args.device)
    precision = precision_of(args)
    loader = torch.utils.data.DataLoader(plugin_pairs(ctx, task, data), batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda")
    task = task.to(device).train()
    losses: list[torch.Tensor] = []

    def forward(batch: dict) -> torch.Tensor:
        with autocast(precision, device):
            out = task(batch)["loss"]
        losses[:] = [out.detach()]
        return out

    lr, wd = HYPER[TINY]
    with TrainingMemory(device) as memory:
        rate = plain_loop([p for p in task.parameters() if p.requires_grad], loader, forward, steps=args.steps, lr=lr,
                          weight_decay=wd, warmup_ratio=WARMUP_RATIO, device=device, items_key="input_ids")
    return {"pairs_per_s": rate, "memory_mib": memory.peak_mib, "loss": float(losses[0]),
            "parameters": sum(p.numel() for p in task.parameters())}


def run_side(args: argparse.Namespace) -> None:
    """The child process: one side's training, its figures written to ``--result``."""
    apply_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        side = {"ours": ours, "peer": plain_side if args.model == TINY else open_clip_side}[args.side]
        figures = side(args, Path(tmp))
    if not all(math.isfinite(figures[k]) for k in ("pairs_per_s", "loss")):
        raise SystemExit(f"{args.side}: a figure is not finite: {figures}")
    args.result.write_text(json.dumps(figures))


# --- the parent: paired rounds of fresh processes -----------------------------------------------

def child(args: argparse.Namespace, side: str, out: Path) -> dict[str, Any]:
    """Run one side in a fresh interpreter with the bench's own flags; its figures."""
    argv = [sys.executable, __file__, "--side", side, "--result", str(out), "--model", args.model,
            "--batch-size", str(args.batch_size), "--image-size", str(args.image_size), "--seq-len", str(args.seq_len),
            "--threads", str(args.threads), "--steps", str(args.steps), "--device", args.device,
            "--precision", args.precision, "--workers", str(args.workers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {side} side failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(out.read_text())


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What both sides train with, and the peer's name, version and settings."""
    precision = precision_of(args)
    common = {"model": args.model, "batch_size": args.batch_size, "steps": f"{args.steps} warm-up + {args.steps} timed",
              "rounds": args.rounds, "device": args.device, "precision": precision, "loader_workers": args.workers,
              "warmup_ratio": WARMUP_RATIO, "clip_grad_norm": CLIP_GRAD}
    if args.model == TINY:
        lr, wd = HYPER[TINY]
        return {**common, "lr": lr, "weight_decay": wd, "peer": "plain torch loop (bench/paired.py plain_loop)",
                "peer_settings": "fused AdamW betas (0.9, 0.999), LambdaLR warm-up + cosine, clip 1.0, same task"}
    import open_clip

    lr, wd = HYPER["clip"]
    shape = shape_of(args)
    return {**common, "lr": lr, "weight_decay": wd, "shape": asdict(shape),
            "peer": f"open_clip {open_clip.__version__}",
            "peer_settings": (f"create_model(custom config {json.dumps(shape.open_clip_config())}), ClipLoss, "
                              f"AdamW fused betas (0.9, 0.98) eps 1e-6 (open_clip's groups), cosine_lr with warm-up, "
                              f"grad_clip_norm {CLIP_GRAD}, logit_scale clamped to ln(100) after each step, "
                              f"open_clip_train.train.train_one_epoch, precision "
                              f"{open_clip_precision(precision)}, image_transform(is_train=True)"),
            "ours_settings": " ".join(shape.overrides())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, model="clip-small", batch_size=32, steps=10, length=0, length_flag="--image-size",
                    length_help="input side in pixels; 0: the model's own (96 clip-small, 224 vit-b-32, 32 tiny)")
    parser.add_argument("--seq-len", type=int, default=0,
                        help="caption tokens (padded); 0: the model's own (32 clip-small, 77 vit-b-32, 24 tiny)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="auto: bf16 on a GPU that has it, else fp32")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds (each runs both sides, fresh processes)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers on both sides (default 0)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 step, 1 round: proves it runs")
    parser.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model not in (*SHAPES, TINY):
        parser.error(f"--model {args.model!r}: use one of {', '.join([*SHAPES, TINY])}")
    if args.side:
        run_side(args)
        return
    if args.smoke:
        args.batch_size, args.steps, args.rounds = 4, 1, 1
        if args.model != TINY:
            args.image_size, args.seq_len = args.image_size or 32, args.seq_len or 16
    threads = apply_threads(args.threads)
    peer_name = "plain torch loop" if args.model == TINY else "open_clip"
    info = settings(args)
    print("settings: " + json.dumps(info))
    results = Paired()
    memory: dict[str, list[float]] = {"ours": [], "peer": []}
    losses: dict[str, list[float]] = {"ours": [], "peer": []}
    parameters: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = ("peer", "ours") if i % 2 == 0 else ("ours", "peer")
            got = {side: child(args, side, Path(tmp) / f"{side}{i}.json") for side in order}
            results.plugin.append(got["ours"]["pairs_per_s"])
            results.baseline.append(got["peer"]["pairs_per_s"])
            for side in ("ours", "peer"):
                memory[side].append(got[side]["memory_mib"])
                losses[side].append(got[side]["loss"])
                parameters[side] = got[side]["parameters"]
            print(f"round {i + 1}: ours {got['ours']['pairs_per_s']:.1f} pairs/s, {peer_name} "
                  f"{got['peer']['pairs_per_s']:.1f} pairs/s, ratio {results.ratios[-1]:.3f}; training memory "
                  f"ours {got['ours']['memory_mib']:.0f} MiB, {peer_name} {got['peer']['memory_mib']:.0f} MiB; "
                  f"parameters ours {got['ours']['parameters']:,}, {peer_name} {got['peer']['parameters']:,}",
                  flush=True)
    label = "plugin/plain" if args.model == TINY else "plugin/open_clip"
    memory_ratios = [a / b if b > 0 else float("nan") for a, b in zip(memory["ours"], memory["peer"])]
    load = machine()["load_average"]
    print(f"model={args.model} device={args.device} ({info['precision']}) batch={args.batch_size} "
          f"steps={args.steps}x2 rounds={args.rounds} torch_threads={threads} load_average={load}")
    print(results.summary("pairs/s", peer_name, label))
    print(f"training memory ours/{peer_name}: {statistics.median(memory_ratios):.3f} "
          f"(ours {statistics.median(memory['ours']):.0f} MiB, {peer_name} {statistics.median(memory['peer']):.0f} MiB)")
    write_json(args.json, {"bench": "alignment_throughput", "settings": info, "threads": threads,
                           "ours_pairs_per_s": results.plugin, "peer_pairs_per_s": results.baseline,
                           "ratios": results.ratios, "ratio_median": statistics.median(results.ratios),
                           "ours_memory_mib": memory["ours"], "peer_memory_mib": memory["peer"],
                           "memory_ratio_median": statistics.median(memory_ratios),
                           "ours_loss": losses["ours"], "peer_loss": losses["peer"],
                           "ours_parameters": parameters["ours"], "peer_parameters": parameters["peer"],
                           "smoke": args.smoke})


if __name__ == "__main__":
    main()
