"""Training throughput of the alignment plugin's loop on the engine vs a plain torch loop.

Both loops train the same dual encoder (the shipped ``model=dual_tiny`` unless ``--model`` names
another group) on the same pairs (the bundled shapes, decoded and cached once, augmented by the
shipped pipeline, one caption drawn per image), on the same device and precision, with AdamW, a
warmup + cosine schedule and gradient clipping. The plugin's loop adds what the engine gives:
seeded augmentation and caption sampling, a resumable sampler, non-finite-loss checks,
metric logging and the final checkpoint.

Each round runs ``2 * steps`` optimizer steps per loop and times the second half (the first warms
up), data loading included: for the engine, the ``items_per_s`` it logs once for that window
(``log_every = steps``); for the plain loop, pairs over ``perf_counter`` time from the end of step
``steps`` to the end of the last step, the same window. Rounds are paired (``bench/paired.py``):
the figure reported is the median of the rounds' ratios, with their min-max.

Usage::

    python bench/alignment_throughput.py --device cpu --steps 30 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from paired import plain_loop, run_rounds

from framework.hookspecs import RunInfo
from framework.media.augment import build_pipeline
from framework.modality import RunContext
from framework.testing import prepared
from framework.training import Engine, TrainerConfig
from framework.training.device import autocast, resolve_device, resolve_precision
from plugins.alignment.data import CaptionDataset, TokenCache, captions_of
from plugins.alignment.loop import train_alignment
from plugins.alignment.modality import AlignmentModality, store_for

CONF = Path(__file__).resolve().parents[1] / "plugins" / "alignment" / "conf"
LR, WEIGHT_DECAY, WARMUP = 2e-3, 0.05, 0.1


def load(model_group: str, tmp: Path) -> tuple[RunContext, AlignmentModality, object]:
    """The config ``python -m framework +modality=alignment model=GROUP`` runs, and its shapes, decoded once."""
    modality, ctx = prepared(["+modality=alignment", f"model={model_group}"], tmp)
    return ctx, modality, modality.load_data(ctx)  # type: ignore[return-value]


def pairs(ctx: RunContext, task, data) -> CaptionDataset:
    """The training pairs, exactly as the plugin's ``train`` builds them."""
    records = data.records("train")
    tokens = TokenCache(task.tokenize, [c for r in records for c in captions_of(r)])
    augment = build_pipeline(ctx.modality.augment, task.spec.size, "modality.augment")
    return CaptionDataset(records, store_for(ctx, task), tokens, augment, sample=True)


def plugin_round(ctx: RunContext, modality: AlignmentModality, data, args: argparse.Namespace, run_dir: Path) -> float:
    """Pairs/s of the plugin's loop over the second half of ``2 * steps`` steps."""
    task = modality.build_task(ctx, data)
    cfg = TrainerConfig(max_steps=2 * args.steps, batch_size=args.batch_size, lr=LR, weight_decay=WEIGHT_DECAY,
                        warmup_ratio=WARMUP, device=args.device, progress=False, log_every=args.steps, resume="never")
    with Engine(cfg, RunInfo(run_dir=run_dir, modality="alignment", name="bench", config_yaml=""), seed=0) as engine:
        train_alignment(engine, task, pairs(ctx, task, data))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["metrics"]["items_per_s"] for r in rows if r["kind"] == "train"][-1]  # the timed window


def plain_round(ctx: RunContext, modality: AlignmentModality, data, args: argparse.Namespace) -> float:
    """Pairs/s of a plain torch loop (same towers, pairs, device, precision, optimizer and
    schedule) over the second half of ``2 * steps`` steps."""
    task = modality.build_task(ctx, data)
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    loader = torch.utils.data.DataLoader(pairs(ctx, task, data), batch_size=args.batch_size, shuffle=True,
                                         pin_memory=device.type == "cuda")
    task = task.to(device).train()

    def forward(batch: dict) -> torch.Tensor:
        with autocast(precision, device):
            return task(batch)["loss"]

    return plain_loop([p for p in task.parameters() if p.requires_grad], loader, forward, steps=args.steps, lr=LR,
                      weight_decay=WEIGHT_DECAY, warmup_ratio=WARMUP, device=device, items_key="input_ids")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per round (after as many warmup)")
    parser.add_argument("--model", default="dual_tiny", help="shipped model group")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (each runs both loops)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ctx, modality, data = load(args.model, Path(tmp))
        result = run_rounds(args.rounds, lambda i: plain_round(ctx, modality, data, args),
                            lambda i: plugin_round(ctx, modality, data, args, Path(tmp) / f"round{i}"), "pairs/s")
    device = resolve_device(args.device)
    print(f"model={args.model} device={device} ({resolve_precision('auto', device)}) batch={args.batch_size} "
          f"steps={args.steps}x2 rounds={args.rounds} torch_threads={torch.get_num_threads()}")
    print(result.summary("pairs/s", "plain torch loop", "plugin/plain"))

if __name__ == "__main__":
    main()
