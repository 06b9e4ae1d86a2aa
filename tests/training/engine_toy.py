"""Tiny model, data and event recorder shared by the engine tests (CPU, milliseconds per step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from framework.hookspecs import RunInfo
from framework.training import TrainerConfig

IN_DIM = 4


class NoisyRegression(Dataset):
    """``y = x @ w + 0.5`` with fresh ``torch.rand`` noise on every fetch (an 'augmentation')."""

    def __init__(self, n: int = 48, seed: int = 123) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, IN_DIM, generator=gen)  # (N, IN_DIM)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.5  # (N,)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        noise = 0.1 * torch.rand(IN_DIM)
        return {"x": self.x[i] + noise, "y": self.y[i]}


class TinyTask(nn.Module):
    """A two-layer MLP with dropout (so the torch RNG matters) and its MSE loss."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(IN_DIM, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 1))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.net(batch["x"]).squeeze(-1)  # (B,)
        loss = nn.functional.mse_loss(pred, batch["y"])
        return {"loss": loss, "mae": (pred - batch["y"]).abs().mean()}


class Recorder:
    """An EngineEvents fake that keeps every call."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.evals: list[tuple[int, str, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, Path]] = []

    def step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        self.steps.append((step, dict(metrics)))

    def evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        self.evals.append((step, split, dict(metrics)))

    def checkpoint_saved(self, run: RunInfo, step: int, path: Path) -> None:
        self.checkpoints.append((step, path))


def make_cfg(**overrides: Any) -> TrainerConfig:
    """A CPU config for tests: small batches, no progress bar, deterministic."""
    base: dict[str, Any] = dict(device="cpu", batch_size=8, lr=1e-2, progress=False, deterministic=True, log_every=1)
    base.update(overrides)
    return TrainerConfig(**base)


def make_run(run_dir: Path, config_yaml: str = "trainer:\n  lr: 0.01\n") -> RunInfo:
    return RunInfo(run_dir=run_dir, modality="toy", name="toy", config_yaml=config_yaml)


def train_losses(engine: Any, task: nn.Module, dataset: Dataset, validate: Any = None, hook: Any = None) -> list[float]:
    """Run the standard loop; return every micro-batch loss. ``hook(engine)`` runs after each backward."""
    model = engine.setup(task)
    losses = []
    for batch in engine.steps(engine.dataloader(dataset), validate=validate):
        out = model(batch)
        engine.backward(out["loss"], out)
        losses.append(out["loss"].item())
        if hook is not None:
            hook(engine)
    return losses
