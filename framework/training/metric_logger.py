"""The engine's metric logger: metric windows, ``metrics.jsonl``, progress, events; overfitting and early stop.

:class:`MetricLogger` is the one object the loop reports to: micro-batch metrics, optimizer steps
taken or skipped, validations and checkpoints. It averages, writes ``metrics.jsonl`` and forwards
events on the main process, and shows progress (:class:`Progress`: a tqdm bar on a terminal, a plain
log line every few log steps otherwise, so a redirected log gets no carriage-return flood).

Metric sums stay on the device between log steps, so logging costs one host sync per log step and
none in between. (This module was ``framework.training.monitor``; that name still imports, with a
DeprecationWarning.)
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import IO, Any, Mapping, Optional, Protocol

import torch

from framework.run_info import RunInfo

log = logging.getLogger(__name__)


class EngineEvents(Protocol):
    """What the engine reports, on the main process only. The plugin facade forwards to hooks."""

    def step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        """Every ``log_every`` optimizer steps, with averaged train metrics, lr, grad_norm, items_per_s."""

    def evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        """After each validation during training (``split="val"``), with ``train_loss`` beside it."""

    def checkpoint_saved(self, run: RunInfo, step: int, path: Path) -> None:
        """After a checkpoint is completely written and valid."""


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


#: The key a task's output dict uses to declare the loss of a model that has learnt nothing (the
#: uniform guess): ``ln(classes)`` for classification, ``ln(candidates)`` for a contrastive loss.
CHANCE_LOSS = "chance_loss"


class ChanceWatch:
    """Warns once when, after warm-up, the train loss sits at the task's declared chance value
    (:data:`CHANCE_LOSS`) for ``rows`` logged train rows in a row: the model predicts nothing
    (typically a learning rate too high for pretrained weights, which collapse to the uniform guess).

    Args:
        rows: Consecutive train rows at chance before the warning.
        tolerance: "At chance" means within this fraction of the chance value.
    """

    def __init__(self, rows: int = 3, tolerance: float = 0.02) -> None:
        self.rows, self.tolerance = rows, tolerance
        self.after_step = 0  # the last warm-up step; set by the engine when the schedule is known
        self.streak = 0
        self.warned = False

    def observe(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Record one train row; log the warning (once) and return True when the loss sits at chance."""
        chance, loss = metrics.get(CHANCE_LOSS), metrics.get("loss")
        if self.warned or chance is None or loss is None or step <= self.after_step or chance <= 0:
            return False
        self.streak = self.streak + 1 if abs(loss - chance) <= self.tolerance * chance else 0
        if self.streak < self.rows:
            return False
        self.warned = True
        log.warning(
            "The train loss sits at its chance value at step %d (%.4g; chance %.4g, for %d logged rows after "
            "warm-up): the model is not learning. With pretrained weights this is usually a learning rate "
            "too high for them (the lr is %.3g now); lower trainer.lr (or a per-part rate the modality offers), "
            "or lengthen trainer.warmup_ratio.", step, loss, chance, self.rows, float(metrics.get("lr", float("nan"))))
        return True


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


class Progress:
    """Progress of the step loop on stderr, in a form that suits where stderr goes.

    On a terminal: a tqdm bar advanced every optimizer step, its loss and throughput refreshed on
    log steps. Otherwise (a redirected log file, a batch job): no bar, but one plain log line on a
    log step at most every ``min_interval_s`` seconds, and one at the last step, e.g.
    ``step 120/1000 (12%) loss 0.5321, 830 items/s, 0:00:14 elapsed, ~0:01:42 left``.

    Args:
        total: The step budget.
        initial: The step training starts (or resumes) at.
        interactive: Draw a bar; ``None`` asks ``stream.isatty()``.
        min_interval_s: Least seconds between two plain lines (the last step is always shown).
        stream: Where the bar goes (stderr by default); plain lines go through :mod:`logging`.
    """

    def __init__(self, total: int, initial: int, *, interactive: Optional[bool] = None,
                 min_interval_s: float = 30.0, stream: Optional[IO[str]] = None) -> None:
        stream = stream if stream is not None else sys.stderr
        self.interactive = _isatty(stream) if interactive is None else interactive
        self.total, self.initial, self.min_interval_s = total, initial, min_interval_s
        self.lines = 0  # plain lines written
        self._started = self._last_line = time.perf_counter()
        self._bar: Any = None
        if self.interactive:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False, file=stream)

    def advance(self) -> None:
        """One optimizer step was taken (called every step; cheap)."""
        if self._bar is not None:
            self._bar.update(1)

    def show(self, step: int, metrics: Mapping[str, float]) -> None:
        """A log step's metrics: the bar's postfix, or a plain line when one is due."""
        loss, rate = metrics.get("loss", float("nan")), metrics.get("items_per_s", 0.0)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}", items_s=f"{rate:.0f}", refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_line < self.min_interval_s and step < self.total and self.lines:
            return
        self._last_line, self.lines = now, self.lines + 1
        elapsed, done = now - self._started, step - self.initial
        left = f", ~{_clock(elapsed / done * (self.total - step))} left" if done > 0 and step < self.total else ""
        log.info("step %d/%d (%d%%) loss %.4g, %.0f items/s, %s elapsed%s", step, self.total,
                 100 * step // max(self.total, 1), loss, rate, _clock(elapsed), left)

    def close(self) -> None:
        """Remove the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False


def _clock(seconds: float) -> str:
    whole = int(max(seconds, 0.0))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class MetricLogger:
    """Averages what the loop reports and writes it out: ``metrics.jsonl``, events, progress.

    Three windows hold observations: ``pending`` (the current accumulation group, dropped when its
    step is skipped), ``window`` (since the last log step) and ``since_eval`` (since the last
    validation, for the train loss shown beside it). Only the main process writes.

    Args:
        run: The run; ``run.run_dir / "metrics.jsonl"`` receives the rows.
        events: Receiver of step/evaluated/checkpoint events; optional.
        is_main: Whether this process writes (rank 0).
        world_size: Processes whose items count towards throughput.
        log_every: Optimizer steps between train rows.
        progress: Show progress (see :class:`Progress`).
    """

    def __init__(self, run: RunInfo, events: Optional[EngineEvents], *, is_main: bool, world_size: int,
                 log_every: int, progress: bool) -> None:
        self.run, self.events, self.is_main, self.world_size = run, events, is_main, world_size
        self.log_every, self.show_progress = max(1, log_every), progress and is_main
        self.file = MetricsFile(Path(run.run_dir) / "metrics.jsonl") if is_main else None
        self.pending, self.window, self.since_eval = MetricWindow(), MetricWindow(), MetricWindow()
        self.last_finite: Optional[MetricWindow] = None  # the last group that stepped
        self.progress: Optional[Progress] = None
        self.chance = ChanceWatch()
        self._items = self._tokens = 0
        self._clock = time.perf_counter()

    def start(self, total: int, initial: int) -> None:
        """The step loop begins (or resumes at ``initial``): open progress, restart the throughput clock."""
        self.close()
        self.progress = Progress(total, initial) if self.show_progress else None
        self._clock, self._items, self._tokens = time.perf_counter(), 0, 0

    def micro_batch(self, loss: torch.Tensor, metrics: Optional[Mapping[str, Any]], items: int) -> None:
        """Record one micro-batch: its loss, its other scalars, ``items`` and a ``tokens`` count."""
        extra = {k: v for k, v in (metrics or {}).items() if k != "loss"}
        tokens = extra.pop("tokens", None)
        if isinstance(tokens, (int, float)):  # a plain count: no host sync
            self._tokens += tokens
        self.pending.add({"loss": loss, **extra})
        self._items += items

    def step_taken(self, step: int) -> None:
        """The pending group's optimizer step happened: its metrics join the log windows."""
        self.last_finite = self.pending  # averaged only if a later failure reports it
        self.window.merge(self.pending)
        self.since_eval.merge(self.pending)
        self.pending = MetricWindow()
        if self.progress is not None:
            self.progress.advance()

    def step_skipped(self) -> None:
        """The pending group's step was skipped (non-finite): forget its metrics."""
        self.pending.clear()

    def is_log_step(self, step: int) -> bool:
        """Whether ``step`` writes a train row."""
        return step % self.log_every == 0

    def grad_norm(self, norm: torch.Tensor) -> None:
        """The pre-clip gradient norm of the step about to be logged."""
        self.window.add({"grad_norm": norm})

    def train(self, step: int, epoch: int, lr: float) -> None:
        """Write the train row of ``step``: window means, ``lr``, ``items_per_s`` (and ``tokens_per_s``)."""
        metrics = self.window.pop()  # every rank pops, so the windows stay aligned
        if not self.is_main:
            return
        now = time.perf_counter()
        elapsed = max(now - self._clock, 1e-9)
        metrics["lr"] = lr
        metrics["items_per_s"] = self._items * self.world_size / elapsed
        if self._tokens:
            metrics["tokens_per_s"] = self._tokens * self.world_size / elapsed
        self._clock, self._items, self._tokens = now, 0, 0
        self.file.write(step, "train", metrics, epoch=epoch)  # type: ignore[union-attr]
        self.chance.observe(step, metrics)
        if self.events is not None:
            self.events.step(self.run, step, metrics)
        if self.progress is not None:
            self.progress.show(step, metrics)

    def validation(self, step: int, epoch: int, metrics: Mapping[str, float]) -> Optional[float]:
        """Write a ``val`` row (with ``train_loss``, the mean since the last one); return that train loss."""
        train_loss = self.since_eval.pop().get("loss")
        row = dict(metrics) if train_loss is None else {**metrics, "train_loss": train_loss}
        if self.is_main:
            self.file.write(step, "val", row, epoch=epoch)  # type: ignore[union-attr]
            if self.events is not None:
                self.events.evaluated(self.run, step, "val", row)
        return train_loss

    def checkpoint(self, step: int, path: Path) -> None:
        """A checkpoint was written (main process): a ``checkpoint`` row and the event."""
        if self.is_main:
            self.file.write(step, "checkpoint", {}, path=str(path))  # type: ignore[union-attr]
            if self.events is not None:
                self.events.checkpoint_saved(self.run, step, path)

    def resumed_at(self, step: int) -> None:
        """After a resume from ``step``: move rows the interrupted attempt logged later aside."""
        if self.file is None:
            return
        dropped = self.file.supersede_after(step)
        if dropped:
            log.info("metrics.jsonl: %d row(s) logged after step %d by the interrupted attempt moved to %s",
                     dropped, step, self.file.superseded_path)

    def close(self) -> None:
        """Close the progress bar (idempotent)."""
        if self.progress is not None:
            self.progress.close()
            self.progress = None
