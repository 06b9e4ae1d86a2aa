"""Checkpoints: atomic, verified, and loadable without unpickling anything but tensors.

Layout of one checkpoint, ``run_dir/checkpoints/step_00000123/``:

* ``model.safetensors``: the task's ``state_dict`` (unwrapped; tied tensors stored once);
* ``state.pt``: optimizer, schedule, scaler, counters, data position, RNG states, EMA weights,
  early-stopping state; plain containers and tensors, so ``torch.load(weights_only=True)`` reads it;
* ``config.yaml``: the run's resolved config;
* ``manifest.json``: written last; every file's size and sha256, the step and the format version.

A checkpoint is written into a hidden temp directory beside the others and renamed into place only
once its manifest is on disk, so a crash at any moment leaves every earlier checkpoint valid. The
final checkpoint of a run is an ordinary ``step_XXXXXXXX`` directory (there is no ``last`` alias):
:func:`latest_checkpoint` is how to find it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_model
from torch import nn

from framework.errors import FrameworkError, first_line

log = logging.getLogger(__name__)


class CheckpointError(FrameworkError, ValueError):
    """A checkpoint (or one of its files) cannot be used; the one-line message names the file and why."""

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
CONFIG = "config.yaml"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")


def checkpoint_root(run_dir: Path) -> Path:
    """``run_dir/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def step_dir_name(step: int) -> str:
    """``step_00000123`` for step 123."""
    return f"step_{step:08d}"


def write_checkpoint(
    root: Path, name: str, module: nn.Module | None, state: dict[str, Any], config_yaml: str, step: int,
    extra_dirs: dict[str, Path] | None = None,
) -> Path:
    """Write one checkpoint atomically under ``root/name`` and return its path.

    Everything goes into ``root/.tmp-<name>-<pid>`` first (each file fsynced), the manifest last,
    then one ``os.rename`` publishes it. An existing ``root/name`` is replaced. ``extra_dirs``
    (name -> a finished directory, e.g. FSDP's sharded state) are moved inside before the
    manifest is written, and their files are listed in it. ``module=None`` writes no
    ``model.safetensors`` (a sharded checkpoint keeps its weights in ``sharded/``).
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = [STATE, CONFIG]
    if module is not None:
        save_model(module, str(tmp / WEIGHTS), force_contiguous=True)
        files.append(WEIGHTS)
    torch.save(state, tmp / STATE)
    (tmp / CONFIG).write_text(config_yaml, encoding="utf-8")
    for dir_name, source in (extra_dirs or {}).items():
        os.rename(source, tmp / dir_name)
        files += sorted(str(p.relative_to(tmp)) for p in (tmp / dir_name).rglob("*") if p.is_file())
    write_manifest(tmp, files, step)
    final = root / name
    if final.exists():
        # Move the old one aside first: rename onto a non-empty directory fails on POSIX.
        stale = root / f".old-{name}-{os.getpid()}"
        os.rename(final, stale)
        os.rename(tmp, final)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(root)
    return final


def write_manifest(directory: Path, files: Iterable[str], step: int) -> Path:
    """fsync ``files`` in ``directory``, then write (and fsync) ``manifest.json`` describing them."""
    files = list(files)
    for fname in files:
        _fsync(Path(directory) / fname)
    manifest = {"format_version": FORMAT_VERSION, "step": step,
                "files": {f: _describe(Path(directory) / f) for f in files}}
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    _fsync(path)
    return path


def non_finite_tensors(tensors: dict[str, Any]) -> list[str]:
    """Names of floating-point tensors in ``tensors`` holding NaN or inf."""
    local = {k: v.to_local() if hasattr(v, "to_local") else v for k, v in tensors.items()}  # FSDP shards
    return [k for k, v in local.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def verify_checkpoint(ckpt_dir: Path) -> str | None:
    """Return why ``ckpt_dir`` is not a complete, intact checkpoint, or ``None`` when it is."""
    manifest_path = Path(ckpt_dir) / MANIFEST
    if not manifest_path.is_file():
        return "no manifest.json (the write did not finish)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError) as err:
        return f"unreadable manifest.json ({err})"
    if manifest.get("format_version") != FORMAT_VERSION:
        return f"format_version {manifest.get('format_version')} is not {FORMAT_VERSION}"
    for fname, expected in files.items():
        path = Path(ckpt_dir) / fname
        if not path.is_file():
            return f"{fname} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{fname} has {path.stat().st_size} bytes, manifest says {expected['size']}"
        if _sha256(path) != expected["sha256"]:
            return f"{fname} does not match its sha256 in the manifest"
    return None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Every ``step_*`` directory under ``run_dir/checkpoints``, newest step first (unverified)."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest usable checkpoint of a run, or ``None``.

    Unusable ones (no manifest, missing or altered files, a ``state.pt`` that is not weights-only
    data, unreadable or non-finite weights) are skipped with a logged warning.
    """
    for path in list_checkpoints(run_dir):
        try:
            read_checkpoint(path)
        except CheckpointError as err:
            log.warning("Skipping checkpoint: %s", err)
            continue
        return path
    return None


def read_checkpoint(ckpt_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify a checkpoint and read it: ``(weights, state)``, both on the CPU.

    Raises:
        CheckpointError: Naming the file and the problem: manifest mismatch, a ``state.pt`` that
            is not weights-only data, unreadable or non-finite weights.
    """
    problem = verify_checkpoint(ckpt_dir)
    if problem is not None:
        raise CheckpointError(f"{ckpt_dir}: {problem}")
    state = load_state(ckpt_dir)
    if _is_sharded(Path(ckpt_dir)):  # the shards were hashed with the manifest and checked finite when saved
        return {}, state
    return read_weights(Path(ckpt_dir) / WEIGHTS), state


def _is_sharded(ckpt_dir: Path) -> bool:
    """A checkpoint written under FSDP2: its weights are in ``sharded/`` only."""
    from framework.training.fsdp import SHARDED

    return not (ckpt_dir / WEIGHTS).exists() and (ckpt_dir / SHARDED).is_dir()


def read_model_weights(ckpt_dir: Path, *, prefer_ema: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
    """A checkpoint's (or an export's) full weights on the CPU, verified as in
    :func:`load_model_weights`, and whether they are EMA weights; a sharded checkpoint is read
    whole from its ``sharded/`` directory in this process."""
    ckpt_dir = _verified(Path(ckpt_dir))
    weights, ema = _weights_outside_safetensors(ckpt_dir, prefer_ema)
    return (read_weights(ckpt_dir / WEIGHTS) if weights is None else weights), ema


def _weights_outside_safetensors(ckpt_dir: Path, prefer_ema: bool) -> tuple[dict[str, torch.Tensor] | None, bool]:
    """The EMA weights (``prefer_ema``), else a sharded checkpoint's weights, with whether they
    are EMA; ``(None, False)`` when the weights to use are ``model.safetensors``."""
    from framework.training.fsdp import SHARDED, read_full_weights

    if prefer_ema and (ckpt_dir / STATE).is_file():
        ema = load_state(ckpt_dir).get("ema") or {}
        if ema:
            bad = non_finite_tensors(ema)
            if bad:
                raise CheckpointError(f"{ckpt_dir / STATE}: non-finite EMA weights (NaN/inf) in {', '.join(bad[:5])}")
            return dict(ema), True
    if _is_sharded(ckpt_dir):
        return read_full_weights(ckpt_dir / SHARDED), False
    return None, False


def _verified(ckpt_dir: Path) -> Path:
    """``ckpt_dir``, once it is a directory that passes its manifest (checkpoints and core exports)."""
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir}: not a checkpoint directory (it does not exist or is a file)")
    if (ckpt_dir / MANIFEST).is_file() or (ckpt_dir / STATE).is_file():
        problem = verify_checkpoint(ckpt_dir)
        if problem is not None:
            raise CheckpointError(f"{ckpt_dir}: {problem}")
    return ckpt_dir


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU, refusing unreadable files and NaN/inf weights."""
    try:
        weights = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable weights ({first_line(err, type(err).__name__)})") from None
    bad = non_finite_tensors(weights)
    if bad:
        raise CheckpointError(f"{path}: non-finite weights (NaN/inf) in {', '.join(bad[:5])}"
                              + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
    return weights


def load_model_weights(module: nn.Module, ckpt_dir: Path, *, prefer_ema: bool = True) -> bool:
    """Load a checkpoint's weights into ``module`` (strict: every key must match).

    With ``prefer_ema`` and a checkpoint trained with ``trainer.ema_decay``, the averaged weights
    from ``state.pt`` are loaded (they are what a run evaluates and exports); otherwise
    ``model.safetensors`` (``sharded/`` for a checkpoint written under FSDP2). An export
    directory (no ``state.pt``) loads its ``model.safetensors``.

    A directory with a ``manifest.json`` (every checkpoint, and exports written by the core) is
    verified against it first; one with a ``state.pt`` but no manifest is refused as incomplete.

    Returns:
        True when EMA weights were loaded.

    Raises:
        CheckpointError: When the directory fails verification or its weights are unusable.
        RuntimeError: When keys are missing or unexpected; the message lists them.
    """
    ckpt_dir = _verified(Path(ckpt_dir))
    weights, ema = _weights_outside_safetensors(ckpt_dir, prefer_ema)
    if weights is None:
        apply_weights(module, ckpt_dir / WEIGHTS)  # re-ties tensors the file keeps once
    else:
        module.load_state_dict(weights, strict=True)
    return ema


def apply_weights(module: nn.Module, path: Path) -> None:
    """Load a safetensors file into ``module`` (strict; tied tensors re-tied), refusing NaN/inf weights."""
    read_weights(path)
    load_model(module, str(path), strict=True)


def load_state(ckpt_dir: Path) -> dict[str, Any]:
    """Read ``state.pt`` onto the CPU with ``weights_only=True`` (never unpickles code).

    Raises:
        CheckpointError: One line naming the file when it is not weights-only data (a pickle that
            would run code is refused, and nothing in it runs) or is unreadable.
    """
    path = Path(ckpt_dir) / STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError...: all mean unusable
        reason = "it holds objects other than tensors and plain containers (nothing in it was run)" \
            if "weights only" in str(err).lower() else f"unreadable ({type(err).__name__})"
        raise CheckpointError(f"{path}: refused: {reason}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: refused: not a training state (a {type(state).__name__})")
    return state


def prune_checkpoints(run_dir: Path, keep: int, protect: Iterable[Path] = ()) -> list[Path]:
    """Delete all but the newest ``keep`` step checkpoints (never those in ``protect``).

    Returns the deleted paths.
    """
    protected = {Path(p).resolve() for p in protect}
    removed = []
    for path in list_checkpoints(run_dir)[max(keep, 0) :]:
        if path.resolve() not in protected:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def remove_partial_writes(run_dir: Path) -> list[Path]:
    """Delete temp directories left by checkpoint writes that never finished (a crash, a kill).

    Call it only where no other process of the run is writing (rank 0, before training).
    """
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    leftovers = [p for p in root.iterdir() if p.is_dir() and p.name.startswith((".tmp-", ".old-"))]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return leftovers


def export_weights(module: nn.Module, out_dir: Path, config_yaml: str) -> list[Path]:
    """Write ``model.safetensors`` and ``config.yaml`` into ``out_dir``; return their paths.

    ``module`` may be wrapped in DDP or ``torch.compile``; its underlying module is saved.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, config = out_dir / WEIGHTS, out_dir / CONFIG
    save_model(unwrap_module(module), str(weights), force_contiguous=True)
    config.write_text(config_yaml, encoding="utf-8")
    return [weights, config]


def unwrap_module(module: nn.Module) -> nn.Module:
    """Strip ``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod  # type: ignore[assignment]
        else:
            return module


def _describe(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, hence best effort.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
