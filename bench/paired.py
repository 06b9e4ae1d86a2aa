"""Paired rounds: the timing protocol the loop benchmarks share.

A round runs the baseline and the plugin's loop back to back, in alternating order (baseline first
in even rounds), and yields one ratio ``plugin / baseline``: on a shared machine a burst from
another process then hits both loops of a round alike. The figure a benchmark reports is the
median of the rounds' ratios, with their min-max; the medians of each loop's own rate are printed
beside it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable


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
