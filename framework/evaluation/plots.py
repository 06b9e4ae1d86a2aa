"""The figures of the HTML reports, drawn with matplotlib and returned as PNG ``data:`` URIs.

Every function returns a string usable as an ``<img src>``, so a report is one self-contained file
that reads without a network. Figures are small (about 100 dpi) to keep reports light.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

DPI = 90


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def png_uri(data: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def file_uri(path: Path) -> str:
    """A PNG file on disk as a data URI."""
    return png_uri(Path(path).read_bytes())


def write_png(uri: str, path: Path) -> Path:
    """Write a PNG ``data:`` URI (as these functions return) to ``path`` (parents created)."""
    from framework.atomic import atomic_write_bytes

    prefix = "data:image/png;base64,"
    if not uri.startswith(prefix):
        raise ValueError(f"not a PNG data URI: {uri[:40]!r}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(Path(path), base64.b64decode(uri[len(prefix):]))


def _finish(fig: Any) -> str:
    plt = _pyplot()
    try:
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return png_uri(buffer.getvalue())


def series_label(key: str) -> str:
    """A metric series' name for a legend: ``train/loss`` -> ``train loss``, ``val/val_loss`` ->
    ``val loss``, ``val/val_acc`` -> ``val acc`` (the split said once)."""
    group, _, name = key.rpartition("/")
    if group and name.startswith(group + "_"):
        name = name[len(group) + 1:]
    return f"{group} {name}".strip().replace("_", " ")


def training_curves(series: Mapping[str, Sequence[tuple[int, float]]], loss_keys: Sequence[str],
                    metric_key: str | None) -> str | None:
    """Train and val loss (left axis) and the main validation metric (right axis) against the step.

    Args:
        series: ``"train/loss" -> [(step, value), ...]``, as
            :func:`framework.tracking.compare.load_metric_series` returns.
        loss_keys: The loss series to draw (those absent are skipped).
        metric_key: The metric series for the right axis, or ``None``.

    Returns:
        The figure's data URI, or ``None`` when none of the series has points.
    """
    present = [k for k in loss_keys if series.get(k)]
    if not present and not (metric_key and series.get(metric_key)):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.9))
    for key, colour in zip(present, ("tab:blue", "tab:orange", "tab:purple", "tab:brown")):
        steps, values = zip(*series[key])
        ax.plot(steps, values, label=series_label(key), color=colour, marker="o" if len(steps) < 30 else None, markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if metric_key and series.get(metric_key):
        right = ax.twinx()
        steps, values = zip(*series[metric_key])
        right.plot(steps, values, label=series_label(metric_key), color="tab:green", linestyle="--", marker="s", markersize=3)
        right.set_ylabel(series_label(metric_key))
        more_h, more_l = right.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    # Below the plot: inside, it would hide the curves of one axis or the other.
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return _finish(fig)


def per_class_bars(values: Mapping[str, float], metric: str, weakest: Sequence[str] = ()) -> str:
    """One bar per class of ``metric`` (recall, say); the weakest classes in red; a class at zero
    gets a visible marker and a ``0`` label, since its bar has no height."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(values) + 2.0), 3.0))
    draw_per_class(ax, values, metric, weakest)
    return _finish(fig)


def draw_per_class(ax: Any, values: Mapping[str, float], metric: str, weakest: Sequence[str] = ()) -> None:
    """:func:`per_class_bars` drawn on the axes ``ax``."""
    names = list(values)
    colours = ["tab:red" if n in weakest else "tab:blue" for n in names]
    ax.bar(range(len(names)), [values[n] for n in names], color=colours)
    top = max(max(values.values(), default=1.0), 1.0)
    for i, name in enumerate(names):
        if values[name] == 0:
            ax.plot([i], [0], marker="^", markersize=8, color=colours[i], clip_on=False, zorder=3)
            ax.annotate("0", (i, 0), xytext=(0, 7), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, color=colours[i], fontweight="bold")
    ax.set_xticks(range(len(names)), labels=names, rotation=90 if len(names) > 12 else 0, fontsize=8)
    ax.set_ylabel(metric)
    ax.set_ylim(0, top * 1.05)
    ax.grid(axis="y", alpha=0.3)


def distributions(reference: Sequence[Any], batch: Sequence[Any], title: str, categorical: bool) -> str:
    """Reference against batch: overlaid density histograms, or side-by-side category shares."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    if categorical:
        cats = sorted({str(v) for v in reference} | {str(v) for v in batch})[:40]
        ref = np.array([sum(str(v) == c for v in reference) for c in cats], dtype=float)
        new = np.array([sum(str(v) == c for v in batch) for c in cats], dtype=float)
        x = np.arange(len(cats))
        ax.bar(x - 0.2, ref / max(ref.sum(), 1), width=0.4, label="reference")
        ax.bar(x + 0.2, new / max(new.sum(), 1), width=0.4, label="batch")
        ax.set_xticks(x, labels=cats, rotation=90 if len(cats) > 8 else 0, fontsize=7)
        ax.set_ylabel("share")
    else:
        ref, new = np.asarray(reference, dtype=float), np.asarray(batch, dtype=float)
        both = np.concatenate([ref, new])
        lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 25)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label="reference")
        ax.hist(new, bins=bins, density=True, alpha=0.5, label="batch")
        ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _finish(fig)


def _batch_axis(ax: Any, labels: Sequence[str]) -> None:
    ax.set_xticks(range(len(labels)), labels=labels, rotation=30 if len(labels) > 4 else 0, fontsize=7, ha="right"
                  if len(labels) > 4 else "center")
    ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    ax.grid(alpha=0.3)


def error_rate_history(entries: Sequence[Any], max_classes: int = 6) -> str:
    """Error rate per evaluated batch (``evaluate`` entries of the monitoring history, oldest
    first): the overall rate with its interval as error bars and the launch rate dashed, and the
    per-class rates (the ``max_classes`` worst in the latest batch) as thin lines."""
    plt = _pyplot()
    labels = [e.batch for e in entries]
    x = np.arange(len(entries))
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    overall = [e.rates.get("error_rate") for e in entries]
    shown = [i for i, r in enumerate(overall) if r is not None]
    if shown:
        rate = np.array([overall[i]["rate"] for i in shown])
        err = np.array([[overall[i]["rate"] - overall[i]["low"] for i in shown],
                        [overall[i]["high"] - overall[i]["rate"] for i in shown]])  # (2, K)
        ax.errorbar(x[shown], rate, yerr=err, color="tab:blue", marker="o", capsize=3, label="error_rate")
        launch = [(i, (entries[i].changes.get("error_rate") or {}).get("launch")) for i in shown]
        launch = [(i, v) for i, v in launch if v is not None]
        if launch:
            ax.plot([i for i, _ in launch], [v for _, v in launch], color="tab:blue", linestyle="--", alpha=0.6,
                    marker="_", markersize=12, label="launch error_rate")
    latest = entries[-1].rates if entries else {}
    worst = sorted((n for n in latest if n.startswith("class/")), key=lambda n: -latest[n]["rate"])[:max_classes]
    for name, colour in zip(worst, plt.get_cmap("tab10").colors[1:]):
        points = [(i, e.rates[name]["rate"]) for i, e in enumerate(entries) if name in e.rates]
        ax.plot(*zip(*points), color=colour, linewidth=1, alpha=0.8, marker=".", label=name)
    _batch_axis(ax, labels)
    ax.set_ylabel("error rate")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _finish(fig)


def psi_history(entries: Sequence[Any]) -> str:
    """PSI of every drift signal per checked batch (``drift`` entries, oldest first); a filled
    marker where the signal's verdict was drift, a hollow one otherwise."""
    plt = _pyplot()
    labels = [e.batch for e in entries]
    names = sorted({n for e in entries for n, s in e.signals.items() if s.get("psi") is not None})
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for name, colour in zip(names, plt.get_cmap("tab20").colors):
        points = [(i, e.signals[name]) for i, e in enumerate(entries)
                  if name in e.signals and e.signals[name].get("psi") is not None]
        xs = [i for i, _ in points]
        ax.plot(xs, [s["psi"] for _, s in points], color=colour, linewidth=1, label=name)
        ax.scatter(xs, [s["psi"] for _, s in points], color=colour, zorder=3,
                   facecolors=[colour if s["verdict"] == "drift" else "white" for _, s in points])
    _batch_axis(ax, labels)
    ax.set_ylabel("PSI")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _finish(fig)
