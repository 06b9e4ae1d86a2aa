"""What every benchmark shares: its command line, the machine it ran on, training memory, JSON out.

Every bench takes the same flags (:func:`add_common_args`): ``--model``, ``--batch-size``, a length
(``--seq-len`` for tokens and audio frames, ``--image-size`` for pixels), ``--threads``, ``--steps``,
``--device`` and ``--json PATH`` (every figure it printed, as one JSON object, for
``bench/gpu_suite.py`` and ``bench/readme_figures.py``).

Training memory is measured apart from imports and set-up: on CUDA, ``max_memory_allocated``
after a ``reset_peak_memory_stats`` at the start of training; on a CPU, the peak resident set size
sampled every few milliseconds during training minus the resident size when training started
(:class:`TrainingMemory`). A whole-process peak (``ru_maxrss``) would mostly count the libraries.
The resident set follows what the C allocator keeps from the operating system as much as what the
tensors hold (glibc raises its mmap threshold as blocks are freed, so freed activations can stay
resident or not from run to run); where a bench compares memory against a target it also
measures, on a CPU, the peak bytes held by live tensors over one profiled step
(:class:`TensorPeak`): the CPU counterpart of CUDA's ``max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any, Optional

import torch


def add_common_args(parser: argparse.ArgumentParser, *, model: str, batch_size: int, steps: int,
                    length: Optional[int] = None, length_flag: str = "--seq-len",
                    length_help: str = "sequence length in tokens") -> None:
    """Add the flags every bench takes, with this bench's defaults.

    Args:
        model: Default ``--model`` (a shipped config group, a timm name, a directory: the bench says).
        batch_size: Default ``--batch-size``.
        steps: Default ``--steps`` (timed optimizer steps, after as many untimed warm-up ones).
        length: Default for ``length_flag``; ``None`` leaves the length flag out.
        length_flag: ``--seq-len`` or ``--image-size``.
    """
    parser.add_argument("--model", default=model, help=f"model to train (default {model})")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"items per step (default {batch_size})")
    if length is not None:
        parser.add_argument(length_flag, type=int, default=length, help=f"{length_help} (default {length})")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for every side (0: one per core, torch's default)")
    parser.add_argument("--steps", type=int, default=steps,
                        help=f"timed optimizer steps, after as many untimed warm-up steps (default {steps})")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")


def apply_threads(threads: int) -> int:
    """Set torch's CPU thread count (``0`` keeps torch's default); returns the count in use."""
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def machine() -> dict[str, Any]:
    """The machine a figure was taken on: CPU, cores, load average, torch threads and versions."""
    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TrainingMemory:
    """Peak memory of the training inside the ``with`` block, apart from what was resident before.

    On CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak at entry (everything the
    block allocated on the device, the model's weights excluded when they were placed before). On a
    CPU: the largest resident set size sampled every ``interval`` seconds inside the block, minus the
    resident size at entry (Linux ``/proc``; elsewhere ``peak_mib`` stays ``nan``).
    """

    def __init__(self, device: torch.device | str, interval: float = 0.005) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.peak_mib = float("nan")
        self._stop = threading.Event()
        self._start = 0
        self._peak = 0
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "TrainingMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        elif os.path.exists("/proc/self/statm"):
            self._start = self._peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = (torch.cuda.max_memory_allocated(self.device) - self._start) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss_bytes())
            self.peak_mib = (self._peak - self._start) / 2**20


def optimizer_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held between steps by training state: the optimizer's state tensors (AdamW's moments)
    and the gradients of its parameters that exist now."""
    total = 0
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
    for group in optimizer.param_groups:
        total += sum(p.grad.numel() * p.grad.element_size() for p in group["params"] if p.grad is not None)
    return total


class TensorPeak:
    """Peak bytes held by live CPU tensors over a stretch of training (one optimizer step).

    ``start(held)`` begins a ``torch.profiler`` run with ``profile_memory=True``; ``stop()`` replays
    its allocation events in time order and takes the highest running total above the start, plus
    ``held``: the bytes of training state already live when it started (:func:`optimizer_bytes`),
    which the events of the stretch cannot see. The model's weights, placed before training, are
    not counted. Unlike the resident set, the figure depends only on the tensors the code
    allocates, not on what the C allocator returns to the system; the profiler adds time, so run
    it outside a timed window.
    """

    def __init__(self) -> None:
        self.peak_mib = float("nan")
        self._held = 0
        self._profiler: Any = None

    def start(self, held: int = 0) -> None:
        """Begin recording; ``held``: bytes of training state live now (see :func:`optimizer_bytes`)."""
        self._held = held
        # One cycle (no schedule): acc_events only keeps torch from warning that cycles are not kept.
        self._profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                                profile_memory=True, acc_events=True)
        self._profiler.__enter__()

    def stop(self) -> None:
        """End recording and set ``peak_mib``."""
        if self._profiler is None:
            raise RuntimeError("TensorPeak.stop() before start()")
        self._profiler.__exit__(None, None, None)
        cpu = torch.autograd.DeviceType.CPU
        events = sorted((e.start_ns(), e.nbytes()) for e in self._profiler.profiler.kineto_results.events()
                        if e.name() == "[memory]" and e.device_type() == cpu)
        running = peak = 0
        for _, nbytes in events:
            running += nbytes
            peak = max(peak, running)
        self.peak_mib = (self._held + peak) / 2**20
        self._profiler = None


def write_json(path: Optional[Path], figures: dict[str, Any]) -> None:
    """Write ``figures`` (plus :func:`machine`) to ``path`` as JSON; nothing when ``path`` is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2, default=str) + "\n")
