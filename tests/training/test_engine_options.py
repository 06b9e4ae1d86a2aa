"""Engine options beyond the defaults: DataLoader workers, the reseed hook, reduced precision, compile,
and CUDA-only paths (marked gpu: skipped, and reported as skipped, without a CUDA device)."""

from __future__ import annotations

import pytest
import torch
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run, train_losses

from framework.training import Engine


class ReseedRecorder(NoisyRegression):
    """Records the seeds the engine passes to ``reseed`` and uses them for its own noise."""

    def __init__(self) -> None:
        super().__init__(n=16)
        self.seeds: list[int] = []
        self._gen = torch.Generator()

    def reseed(self, seed: int) -> None:
        self.seeds.append(seed)
        self._gen.manual_seed(seed)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        noise = 0.1 * torch.rand(4, generator=self._gen)  # a library-owned generator, like albumentations'
        return {"x": self.x[i] + noise, "y": self.y[i]}


def _losses(tmp_path, name: str, dataset, **cfg) -> list[float]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)  # the same initial weights for every run compared
    with Engine(make_cfg(**cfg), make_run(tmp_path / name), seed=7) as engine:
        return train_losses(engine, TinyTask(dropout=0.0), dataset)


def test_worker_processes_give_the_same_losses_as_the_main_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    in_process = _losses(tmp_path, "w0", NoisyRegression(n=32), max_steps=8, num_workers=0)
    in_workers = _losses(tmp_path, "w2", NoisyRegression(n=32), max_steps=8, num_workers=2)
    assert in_workers == in_process  # augmentation is a function of (seed, epoch, index), not of the worker


class WorkerState(torch.utils.data.Dataset):
    """Items that say which process fetched them and how many threads OpenCV may use there."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        import os

        import cv2

        return {"pid": torch.tensor(os.getpid()), "threads": torch.tensor(cv2.getNumThreads())}


def test_a_map_style_loader_keeps_its_workers_from_one_epoch_to_the_next() -> None:
    from framework.training.data import epoch_batches, make_dataloader

    loader = make_dataloader(WorkerState(), batch_size=2, seed=0, num_workers=2)
    pids = [{int(p) for batch in epoch_batches(loader, epoch, 0) for p in batch["pid"]} for epoch in range(2)]
    assert len(pids[0]) == 2 and pids[1] == pids[0]  # the same two processes fetched both epochs


def test_loader_workers_run_opencv_on_one_thread_each() -> None:
    import cv2

    from framework.training.data import epoch_batches, make_dataloader

    cv2.setNumThreads(4)  # this process: several threads, as OpenCV starts by default on a multi-core machine
    assert cv2.getNumThreads() == 4
    loader = make_dataloader(WorkerState(), batch_size=2, seed=0, num_workers=2)
    threads = {int(t) for batch in epoch_batches(loader, 0, 0) for t in batch["threads"]}
    assert threads == {1} and cv2.getNumThreads() == 4  # the workers' pools, not this process's


def test_reseed_hook_receives_one_seed_per_batch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, second = ReseedRecorder(), ReseedRecorder()
    a = _losses(tmp_path, "a", first, max_steps=8, batch_size=4)
    b = _losses(tmp_path, "b", second, max_steps=8, batch_size=4)
    # 16 items in batches of 4: 8 steps are two epochs of 4 batches, each with its own seed
    assert len(first.seeds) == 8 and len(set(first.seeds)) == 8
    assert first.seeds == second.seeds and a == b


def test_a_batch_is_fetched_under_seeds_of_its_own_indices() -> None:
    import random

    import numpy as np

    from framework.training.data import SeededDataset

    class Draws:
        def __len__(self) -> int:
            return 10

        def __getitem__(self, i: int) -> tuple[float, float, float]:
            return random.random(), float(np.random.random()), float(torch.rand(()))

    data = SeededDataset(Draws(), seed=3)
    torch.manual_seed(0)
    batch = data.__getitems__([(1, 4), (1, 7)])
    after = torch.rand(())
    assert data.__getitems__([(1, 4), (1, 7)]) == batch  # a pure function of (seed, epoch, indices)
    assert data.__getitems__([(2, 4), (2, 7)]) != batch  # another epoch draws anew
    assert data.__getitems__([(1, 7), (1, 4)]) != batch  # so does another batch
    assert batch[0] != batch[1]  # the items of a batch draw in turn, not from one seed each
    torch.manual_seed(0)
    assert torch.rand(()) == after  # torch's own stream (dropout) is as if nothing was fetched
    with pytest.raises(ValueError, match="spans epochs"):
        data.__getitems__([(1, 4), (2, 7)])


def test_bf16_autocast_trains_on_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    losses = _losses(tmp_path, "bf16", NoisyRegression(n=64), max_steps=30, precision="bf16", lr=0.03)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-4:]) < sum(losses[:4])


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    eager = _losses(tmp_path, "eager", NoisyRegression(n=32), max_steps=6)
    compiled = _losses(tmp_path, "compiled", NoisyRegression(n=32), max_steps=6, compile=True)
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_on_cuda(tmp_path, precision: str) -> None:  # type: ignore[no-untyped-def]
    with Engine(make_cfg(max_steps=30, precision=precision, device="cuda", lr=0.03),
                make_run(tmp_path / precision), seed=0) as engine:
        losses = train_losses(engine, TinyTask(dropout=0.0), NoisyRegression(n=64))
        assert engine.device.type == "cuda"
        assert (engine.scaler is not None) == (precision == "fp16")  # a grad scaler only for fp16
    assert sum(losses[-4:]) < sum(losses[:4])


@pytest.mark.gpu
def test_auto_device_and_precision_pick_cuda_and_bf16(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Engine(make_cfg(max_steps=2), make_run(tmp_path), seed=0) as engine:
        train_losses(engine, TinyTask(), NoisyRegression(n=8))
        assert engine.device.type == "cuda" and engine.precision == "bf16"


def test_weighted_means_weigh_each_batch_and_leave_out_missing_outputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    class Means(torch.nn.Module):
        def forward(self, batch):  # type: ignore[no-untyped-def]
            return {"loss": batch["x"].mean(), "peak": batch["x"].max()}

    batches = [{"x": torch.tensor([1.0, 3.0])}, {"x": torch.tensor([10.0])}]
    with Engine(make_cfg(max_steps=1), make_run(tmp_path / "means"), seed=0) as engine:
        model = Means().train()
        by_items = engine.weighted_means(model, batches, {"val_loss": "loss", "val_acc": "acc"},
                                         weight=lambda b: b["x"].shape[0])
        by_batch = engine.weighted_means(model, batches, {"val_peak": "peak"})
    assert by_items == pytest.approx({"val_loss": (2.0 * 2 + 10.0) / 3})  # "acc" is not an output: left out
    assert by_batch == pytest.approx({"val_peak": (3.0 + 10.0) / 2})
    assert model.training  # the model's mode is restored
