"""bench/common.py: the CPU live-tensor peak and the training-state bytes the benches report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from common import TensorPeak, optimizer_bytes  # noqa: E402

MIB = 2**20


def test_the_peak_is_the_largest_set_of_tensors_alive_at_once_plus_the_state_held() -> None:
    peak = TensorPeak()
    peak.start(held=3 * MIB)
    a = torch.empty(4 * MIB, dtype=torch.uint8)
    b = torch.empty(2 * MIB, dtype=torch.uint8)  # 6 MiB alive together: the peak
    del a, b
    c = torch.empty(5 * MIB, dtype=torch.uint8)  # allocated after both were freed: under the peak
    del c
    peak.stop()
    assert peak.peak_mib == pytest.approx(3 + 6, abs=0.01)


def test_a_freed_tensor_that_was_alive_before_the_start_does_not_lower_the_peak_below_zero() -> None:
    before = torch.empty(8 * MIB, dtype=torch.uint8)
    peak = TensorPeak()
    peak.start()
    del before  # a free the window sees without its allocation
    peak.stop()
    assert peak.peak_mib == 0.0


def test_stop_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        TensorPeak().stop()


def test_optimizer_bytes_counts_adamw_moments_and_existing_gradients() -> None:
    layer = torch.nn.Linear(256, 128)  # 32,896 parameters
    n = sum(p.numel() for p in layer.parameters())
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    assert optimizer_bytes(optimizer) == 0
    layer(torch.randn(4, 256)).sum().backward()
    assert optimizer_bytes(optimizer) == 4 * n  # gradients only, before the first step
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    # exp_avg and exp_avg_sq per parameter, plus each parameter's scalar step count
    assert optimizer_bytes(optimizer) == 2 * 4 * n + 2 * 4
