"""The checkpointer: save, verify, resume (``auto`` or a path), ``init_from``, and loading trained weights.

:class:`Checkpointer` is the engine's part for checkpoints; the on-disk layout and the low-level
reads and writes are in :mod:`framework.training.checkpoint`. What a resume checks before it
restores anything is a list of :data:`ResumeCheck` callables (by default :class:`SameConfig`), so a
new check (a data fingerprint, say) is one more entry, not an edit of the resume path.

:func:`load_trained_weights` is the one way to load a trained model's weights into a task from a
checkpoint or an export directory, with a one-line error naming the config key, the path and the
fix when they do not fit.
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
import yaml
from torch import nn

from framework.config_tree import flatten
from framework.errors import FrameworkError, first_line
from framework.run_info import RunInfo
from framework.training import checkpoint as ckpt
from framework.training import distributed as dist_utils
from framework.training.config import RESUME_MAY_CHANGE
from framework.training.errors import ResumeRefused, TrainingStopped
from framework.training.signals import StopSignal
from framework.training.strategy import Strategy

log = logging.getLogger(__name__)

#: Called with a verified checkpoint's directory and its ``state.pt`` contents before a resume
#: restores anything; raises :class:`~framework.training.errors.ResumeRefused` to refuse.
ResumeCheck = Callable[[Path, Mapping[str, Any]], None]


def load_trained_weights(task: nn.Module, source: Path | str, *, what: str) -> bool:
    """Load trained weights into ``task`` from a checkpoint or an export directory (strict).

    A checkpoint trained with EMA gives its averaged weights (what a run evaluates and exports).

    Args:
        task: The model to load into; every key must match.
        source: A checkpoint directory (``run_dir/checkpoints/step_...``) or an export directory.
        what: The config key that named ``source`` (``"checkpoint"``, ``"trainer.init_from"``),
            shown in errors.

    Returns:
        True when EMA weights were loaded.

    Raises:
        FrameworkError: One line naming ``what``, the path and the fix, when the weights do not fit
            the model (missing or unexpected keys, other shapes) or the directory is not usable.
    """
    source = Path(source)
    try:
        ema = ckpt.load_model_weights(task, source)  # verified against its manifest, finite
    except ckpt.CheckpointError as err:
        raise ckpt.CheckpointError(f"{what}={source} is not usable: {err}; point {what} at a checkpoint "
                                   "(run_dir/checkpoints/step_...) or an export directory") from None
    except RuntimeError as err:  # missing/unexpected keys or shapes: a checkpoint of another model
        raise FrameworkError(f"{what}={source}: its weights do not fit this model "
                             f"({first_line(err, type(err).__name__)}); was it trained with another model "
                             f"config? Use the model config it was trained with, or another {what}") from None
    log.info("Loaded %sweights from %s (%s)", "EMA " if ema else "", source, what)
    return ema


def read_trained_weights(source: Path | str, *, what: str) -> tuple[dict[str, torch.Tensor], bool]:
    """A checkpoint's or an export's full weights on the CPU and whether they are EMA weights,
    verified as :func:`load_trained_weights` does, without a model to load them into.

    Raises:
        FrameworkError: One line naming ``what``, the path and the fix when the directory is not usable.
    """
    source = Path(source)
    try:
        return ckpt.read_model_weights(source)
    except ckpt.CheckpointError as err:
        raise ckpt.CheckpointError(f"{what}={source} is not usable: {err}; point {what} at a checkpoint "
                                   "(run_dir/checkpoints/step_...) or an export directory") from None


def config_differences(checkpoint_yaml: str, current_yaml: str) -> list[tuple[str, str, str]]:
    """``(key, checkpoint value, current value)`` for every flattened config key that differs,
    except those matching :data:`~framework.training.config.RESUME_MAY_CHANGE`.

    Either side empty or unparseable (a run not made from a config) means nothing to compare.
    """
    try:
        old, new = yaml.safe_load(checkpoint_yaml), yaml.safe_load(current_yaml)
    except yaml.YAMLError:
        return []
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return [(k, a.get(k, "(absent)"), b.get(k, "(absent)")) for k in keys
            if not any(fnmatch.fnmatchcase(k, p) for p in RESUME_MAY_CHANGE)]


class SameConfig:
    """A :data:`ResumeCheck`: refuse a checkpoint whose config differs outside ``RESUME_MAY_CHANGE``."""

    def __init__(self, config_yaml: str) -> None:
        self.config_yaml = config_yaml

    def __call__(self, path: Path, state: Mapping[str, Any]) -> None:
        differing = config_differences((Path(path) / ckpt.CONFIG).read_text(encoding="utf-8"), self.config_yaml)
        if not differing:
            return
        shown = ", ".join(f"{k} (checkpoint {a}, now {b})" for k, a, b in differing[:8])
        more = f" and {len(differing) - 8} more" if len(differing) > 8 else ""
        raise ResumeRefused(
            f"cannot resume from {path}: the config differs in {shown}{more}. Resume continues one run "
            "with its own settings; only budgets, logging and evaluation may change (docs/training.md#resume). "
            f"Undo the change, or start a new run from these weights with trainer.init_from={path} in a "
            "new run dir."
        )


class SameData:
    """A :data:`ResumeCheck`: refuse a checkpoint trained on other data (its ``state.pt`` keeps the
    fingerprint of each training split, :func:`framework.data.version.data_fingerprint`).

    Args:
        fingerprint: The current data's fingerprint, split -> ``"<n> records, sha256 <hex>"``.
        allow_change: Warn and resume anyway (``trainer.allow_data_change=true``).
    """

    key = "data_fingerprint"

    def __init__(self, fingerprint: Mapping[str, str], *, allow_change: bool = False) -> None:
        self.fingerprint, self.allow_change = dict(fingerprint), allow_change

    def __call__(self, path: Path, state: Mapping[str, Any]) -> None:
        saved = state.get(self.key)
        if not saved:  # written before fingerprints were kept: nothing to compare
            log.info("%s keeps no data fingerprint: the data cannot be compared with the checkpoint's", path)
            return
        changed = [f"{split} (checkpoint {saved.get(split, 'absent')}; now {self.fingerprint.get(split, 'absent')})"
                   for split in sorted(set(saved) | set(self.fingerprint)) if saved.get(split) != self.fingerprint.get(split)]
        if not changed:
            return
        if self.allow_change:
            log.warning("Resuming from %s although the data changed: %s (trainer.allow_data_change=true)",
                        path, "; ".join(changed))
            return
        raise ResumeRefused(
            f"cannot resume from {path}: the data changed since it was written: {'; '.join(changed)}. Resuming "
            "would train one run on two data sets. Restore the data, start a new run from these weights with "
            f"trainer.init_from={path} in a new run dir, or resume anyway with trainer.allow_data_change=true."
        )


class Checkpointer:
    """Saves and restores the engine's checkpoints under ``run.run_dir/checkpoints``.

    Every rank makes one and calls its methods together (they hold collectives); rank 0 writes.

    Args:
        run: The run; its ``config_yaml`` goes into every checkpoint.
        strategy: Gives the module and extra directories to write, and restores weights and optimizer.
        keep: Newest step checkpoints to keep (0 keeps all).
        signal: While a checkpoint is written, its ``saving`` flag holds further signals off.
        on_saved: Called on rank 0 with ``(step, path)`` after each checkpoint is complete.
        checks: What a resume verifies before restoring; default ``[SameConfig(run.config_yaml)]``.

    Attributes:
        last_path: The newest checkpoint written or resumed from (``None`` before any).
        last_step: Its step (-1 before any).
    """

    def __init__(self, run: RunInfo, strategy: Strategy, *, keep: int = 0, signal: Optional[StopSignal] = None,
                 on_saved: Optional[Callable[[int, Path], None]] = None,
                 checks: Optional[Sequence[ResumeCheck]] = None) -> None:
        self.run, self.strategy, self.keep, self.signal, self.on_saved = run, strategy, keep, signal, on_saved
        self.checks: list[ResumeCheck] = list(checks) if checks is not None else [SameConfig(run.config_yaml)]
        self.root = ckpt.checkpoint_root(run.run_dir)
        self.last_path: Optional[Path] = None
        self.last_step = -1

    def remove_partial_writes(self) -> None:
        """Before training (rank 0 only): delete temp directories of writes that never finished."""
        if self.strategy.is_main:
            ckpt.remove_partial_writes(self.run.run_dir)

    # --- save ------------------------------------------------------------------------------------

    def save(self, step: int, state: dict[str, Any], optimizer: torch.optim.Optimizer,
             tag: Optional[str] = None) -> Path:
        """Write a checkpoint of ``step`` with ``state`` as ``state.pt``; every rank calls it.

        Args:
            step: The optimizer step.
            state: Everything but the weights (see :meth:`Engine.save_checkpoint`).
            optimizer: For the strategy's sharded state (FSDP2).
            tag: Directory name; ``None`` means ``step_XXXXXXXX``. Only step checkpoints are
                rotated and found by resume.

        Returns:
            The checkpoint directory.

        Raises:
            TrainingStopped: The weights hold NaN/inf on some rank (nothing is written).
        """
        bad = self.strategy.non_finite_weights()
        if bad:  # agreed over ranks, so every rank stops here
            raise TrainingStopped(
                f"refusing to checkpoint step {step}: the weights hold NaN/inf ({', '.join(bad[:3])}); "
                f"the last valid checkpoint is {self.last_path or 'none'}. Try a lower trainer.lr or a "
                "tighter trainer.clip_grad_norm."
            )
        name = tag or ckpt.step_dir_name(step)
        path = self.root / name
        module, extra = self.strategy.checkpoint_module(optimizer, self.root / f".tmp-{name}-sharded")
        dist_utils.barrier()
        if self.strategy.is_main:
            if self.signal is not None:
                self.signal.saving = True
            try:
                path = ckpt.write_checkpoint(self.root, name, module, state, self.run.config_yaml, step,
                                             extra_dirs=extra or None)
            finally:
                if self.signal is not None:
                    self.signal.saving = False
            if tag is None and self.keep > 0:
                ckpt.prune_checkpoints(self.run.run_dir, self.keep, protect=[path])
            if self.on_saved is not None:
                self.on_saved(step, path)
        dist_utils.barrier()
        self.last_step, self.last_path = step, path
        return path

    # --- resume ----------------------------------------------------------------------------------

    def resume_source(self, resume: str) -> Optional[Path]:
        """The checkpoint ``trainer.resume`` asks for: ``auto`` -> the newest usable one (or
        ``None``), ``never`` -> ``None``, else that path. The same answer on every rank."""
        if resume == "never":
            return None
        if resume != "auto":
            return Path(resume)
        found = self.newest_usable() if self.strategy.is_main else None
        found_str = dist_utils.broadcast_object(str(found) if found else None)
        return Path(found_str) if found_str is not None else None

    def newest_usable(self) -> Optional[Path]:
        """The newest checkpoint that verifies and loads; unusable ones are skipped with a warning.

        Raises:
            ResumeRefused: Checkpoints exist but none is usable: the run refuses to start over and
                overwrite them.
        """
        candidates = ckpt.list_checkpoints(self.run.run_dir)
        problems = []
        for path in candidates:
            try:
                ckpt.read_checkpoint(path)
            except ckpt.CheckpointError as err:
                log.warning("Skipping checkpoint: %s", err)
                problems.append(f"{path.name}: {str(err).removeprefix(str(path)).lstrip(':/ ')}")
                continue
            return path
        if candidates:
            raise ResumeRefused(
                f"every checkpoint in {self.root} is unusable ({'; '.join(problems)}); "
                "refusing to start over and overwrite them. To start from step 0 anyway, set trainer.resume=never; "
                "to keep them, choose another hydra.run.dir."
            )
        return None

    def restore(self, path: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Verify ``path``, run the resume checks, restore weights and optimizer through the
        strategy; return the rest of ``state.pt`` for the engine to restore.

        Raises:
            CheckpointError: The checkpoint fails verification, or its files are unusable.
            ResumeRefused: A resume check refused it (e.g. a changed config).
        """
        _, state = ckpt.read_checkpoint(path)
        for check in self.checks:
            check(Path(path), state)
        self.strategy.load(Path(path), optimizer, state["optimizer"])
        self.last_step, self.last_path = int(state["train_state"]["step"]), Path(path)
        return state

    def init_from(self, path: Path | str) -> None:
        """Start a new run from a checkpoint's (or export's) weights, EMA ones when present: the
        strategy's trained module gets them (under FSDP2, rank 0 reads them and every rank receives
        its shards); nothing else is restored. Every rank calls it."""
        what = "trainer.init_from"
        self.strategy.load_weights(lambda: read_trained_weights(path, what=what)[0], f"{what}={path}")
        log.info("Loaded weights from %s (%s): a new run from step 0, not a resume", path, what)
