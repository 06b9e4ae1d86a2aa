"""What the engine watches while training: metric averages, the metrics file, overfitting, early stop.

Metric sums stay on the device between log steps, so logging costs one host sync per log step and
none in between.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping

import torch

log = logging.getLogger(__name__)


class MetricWindow:
    """Scalar metrics (tensors or floats) observed since the last :meth:`pop`.

    Values are only appended (no tensor op per step); sums happen in :meth:`pop` and :meth:`total`.
    """

    def __init__(self) -> None:
        self._values: dict[str, list[Any]] = {}

    def add(self, metrics: Mapping[str, Any]) -> None:
        """Record one observation of each scalar metric; non-scalar values are ignored."""
        for key, value in metrics.items():
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    continue
                value = value.detach()
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            self._values.setdefault(key, []).append(value)

    def merge(self, other: "MetricWindow") -> None:
        """Add another window's observations to this one."""
        for key, values in other._values.items():
            self._values.setdefault(key, []).extend(values)

    def total(self, key: str) -> torch.Tensor:
        """The sum of ``key``'s observations as a float tensor (no host sync)."""
        values = self._values[key]
        if len(values) == 1 and isinstance(values[0], torch.Tensor):
            return values[0].float().reshape(())
        device = next((v.device for v in values if isinstance(v, torch.Tensor)), None)
        return torch.stack([torch.as_tensor(v, device=device).float().reshape(()) for v in values]).sum()

    def sum_value(self, key: str) -> float:
        """The sum of ``key``'s observations as a float: one host read (a sync on a GPU).

        The common case of one tensor observation is read directly, with no tensor op.
        """
        values = self._values[key]
        if len(values) == 1 and isinstance(values[0], torch.Tensor):
            return values[0].item()
        return self.total(key).item()

    def mean_tensor(self, key: str) -> torch.Tensor:
        """The mean of ``key``'s observations as a float tensor (no host sync)."""
        return self.total(key) / len(self._values[key])

    def pop(self) -> dict[str, float]:
        """The means as floats (one host sync for all of them), then reset."""
        keys = list(self._values)
        if not keys:
            return {}
        means = torch.stack([self.mean_tensor(k).cpu() for k in keys]).tolist()
        self._values.clear()
        return dict(zip(keys, means))

    def clear(self) -> None:
        """Drop everything recorded."""
        self._values.clear()

    def __bool__(self) -> bool:
        return bool(self._values)


class MetricsFile:
    """Appends one JSON object per line to ``metrics.jsonl``: ``{"step", "kind", "time", "metrics"}``.

    ``kind`` is ``train`` (averaged step metrics), ``val`` (a validation during training, with the
    train loss beside it) or ``checkpoint``. The file is opened per write, so nothing is held open
    and a crash loses at most the line being written.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def superseded_path(self) -> Path:
        """``metrics.superseded.jsonl``: rows an interrupted attempt logged after its last checkpoint."""
        return self.path.with_name(self.path.stem + ".superseded.jsonl")

    def supersede_after(self, step: int) -> int:
        """On resume from ``step``: move every row with a later step to :attr:`superseded_path`.

        The resumed run logs those steps again, so ``metrics.jsonl`` keeps one row per step and
        kind, as an uninterrupted run would. Returns how many rows were moved (the rewrite is atomic).
        """
        from framework.atomic import atomic_write_text

        if not self.path.is_file():
            return 0
        keep, later = [], []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row_step = int(json.loads(line).get("step", 0))
            except (ValueError, TypeError, AttributeError):
                row_step = step + 1  # a line cut short by the kill: not a record of the resumed run
            (later if row_step > step else keep).append(line)
        if later:
            with open(self.superseded_path, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{line}\n" for line in later))
            atomic_write_text(self.path, "".join(f"{line}\n" for line in keep))
        return len(later)

    def write(self, step: int, kind: str, metrics: Mapping[str, Any], **extra: Any) -> None:
        """Append one record."""
        record = {"step": step, "kind": kind, "time": time.time(), "metrics": dict(metrics), **extra}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")


class OverfitWatch:
    """Warns when validation loss rose for ``window`` evaluations in a row while train loss fell."""

    def __init__(self, window: int = 2) -> None:
        self.window = window
        self.history: list[tuple[float, float]] = []  # (train_loss, val_loss) per evaluation

    def observe(self, step: int, train_loss: float | None, val_loss: float | None) -> bool:
        """Record one evaluation; log a warning and return True when the pattern holds."""
        if train_loss is None or val_loss is None or not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            return False
        self.history.append((train_loss, val_loss))
        recent = self.history[-(self.window + 1) :]
        if len(recent) <= self.window:
            return False
        pairs = list(zip(recent, recent[1:]))
        val_rose = all(b[1] > a[1] for a, b in pairs)
        train_fell = all(b[0] < a[0] for a, b in pairs)
        if val_rose and train_fell:
            log.warning(
                "Possible overfitting at step %d: val_loss rose for %d evaluations in a row (%s) while "
                "train loss fell (%s). Consider early stopping, more data or augmentation, or regularisation.",
                step, self.window, " -> ".join(f"{v:.4g}" for _, v in recent), " -> ".join(f"{t:.4g}" for t, _ in recent),
            )
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """History as lists, for ``state.pt``."""
        return {"history": [list(pair) for pair in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.history = [(float(t), float(v)) for t, v in state.get("history", [])]


class EarlyStopper:
    """Counts evaluations without an improvement of ``min_delta`` in ``metric``.

    Args:
        metric: Key in the validation metrics (e.g. ``val_loss``).
        mode: ``min`` or ``max``.
        patience: Evaluations without improvement before stopping; 0 disables.
        min_delta: The least change that counts as an improvement.
    """

    def __init__(self, metric: str, mode: str, patience: int, min_delta: float) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"trainer.early_stopping.mode={mode!r}; use min or max")
        self.metric, self.mode, self.patience, self.min_delta = metric, mode, patience, min_delta
        self.best: float | None = None
        self.bad_evals = 0

    def observe(self, metrics: Mapping[str, float]) -> bool:
        """Record one evaluation; return True when training should stop."""
        if self.patience <= 0:
            return False
        if self.metric not in metrics:
            log.warning("Early stopping watches %r but validation returned only %s", self.metric, sorted(metrics))
            return False
        value = float(metrics[self.metric])
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.bad_evals = value, 0
            return False
        self.bad_evals += 1
        return self.bad_evals >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Best value and counter, for ``state.pt``."""
        return {"best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.bad_evals = state.get("best"), int(state.get("bad_evals", 0))
