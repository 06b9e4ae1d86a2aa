"""Paired rounds: the timing protocol the loop benchmarks share.

A round runs the baseline and the plugin's loop back to back, in alternating order (baseline first
in even rounds), and yields one ratio ``plugin / baseline``: on a shared machine a burst from
another process then hits both loops of a round alike. The figure a benchmark reports is the
median of the rounds' ratios, with their min-max; the medians of each loop's own rate are printed
beside it. :func:`plain_loop` is the baseline loop they share.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import torch


@dataclass
class Paired:
    """Rates (items/s) of both loops per round, and their ratios."""

    plugin: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.plugin, self.baseline)]

    def summary(self, unit: str, baseline_name: str, ratio_label: str) -> str:
        """The closing lines: each loop's median rate, then the median ratio with its min-max."""
        ratios = self.ratios
        return "\n".join([
            f"plugin loop on the engine: {_spread(self.plugin)} {unit}",
            f"{baseline_name}: {_spread(self.baseline)} {unit}",
            f"ratio {ratio_label}: {statistics.median(ratios):.3f} (median of {len(ratios)} paired rounds; "
            f"min-max {min(ratios):.3f}-{max(ratios):.3f})",
        ])


def run_rounds(rounds: int, baseline: Callable[[int], float], plugin: Callable[[int], float], unit: str) -> Paired:
    """Run ``rounds`` paired rounds; ``baseline(i)`` and ``plugin(i)`` return items/s of round ``i``."""
    out = Paired()
    for i in range(rounds):
        if i % 2 == 0:
            b = baseline(i)
            a = plugin(i)
        else:
            a = plugin(i)
            b = baseline(i)
        out.plugin.append(a)
        out.baseline.append(b)
        print(f"round {i + 1}: plugin {a:.1f} {unit}, baseline {b:.1f} {unit}, ratio {a / b:.3f}", flush=True)
    return out


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (median; {min(values):.1f}-{max(values):.1f})"


def plain_loop(params: list, loader: Iterable[Mapping[str, torch.Tensor]], forward: Callable[[dict], torch.Tensor],
               *, steps: int, lr: float, weight_decay: float, warmup_ratio: float, device: torch.device,
               items_key: str, fused: bool = True) -> float:
    """The training loop a competent user writes, timed as the engine times its own; items/s.

    AdamW (weight decay on ``ndim >= 2`` parameters only; the fused kernel, as the engine's, unless
    ``fused=False``), a ``LambdaLR`` linear warmup then cosine to zero, gradient
    clipping at 1.0 and a host read of the loss per step, for ``2 * steps`` steps. The window is
    the second half: from the end of step ``steps`` (so the next batch's loading is inside it) to
    the end of the last step, the window of the engine's second log line with ``log_every = steps``.

    Args:
        params: The trainable parameters.
        loader: Batches (dicts of tensors), re-iterated per epoch until the steps are done.
        forward: Batch on the device -> scalar loss (autocast is the caller's).
        items_key: The batch entry whose first dimension counts the items.
    """
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                                  lr=lr, fused=fused or None)
    total, warmup = 2 * steps, max(1, int(warmup_ratio * 2 * steps))

    def factor(step: int) -> float:
        progress = min(1.0, max(0, step - warmup) / max(1, total - warmup))
        return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    step, items, started, loss = 0, 0, 0.0, float("nan")
    while step < total:
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            out = forward(batch)
            out.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            loss = out.item()  # a host sync per step, as the engine's non-finite check does
            items += batch[items_key].shape[0]
            step += 1
            if step == steps:
                sync(device)
                started, items = time.perf_counter(), 0
            if step == total:
                break
    sync(device)
    if not math.isfinite(loss):
        raise RuntimeError(f"the plain loop's loss is not finite ({loss})")
    return items / (time.perf_counter() - started)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a clock read covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
