"""The contrastive loss: against a hand computation, and gathered across two DDP processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from framework.testing.ddp import join_group, spawn
from framework.training.distributed import init_distributed, shutdown_distributed
from plugins.alignment.loss import contrastive_loss


def test_symmetric_infonce_matches_a_hand_computation_on_a_3x3_batch() -> None:
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    text = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])
    scale = 2.0
    sims = [[sum(a * b for a, b in zip(i, t)) for t in text.tolist()] for i in image.tolist()]  # sims[i][j]

    def ce(row: list[float], target: int) -> float:  # -log softmax(scale * row)[target]
        return -scale * row[target] + math.log(sum(math.exp(scale * v) for v in row))

    i2t = sum(ce(sims[i], i) for i in range(3)) / 3
    t2i = sum(ce([sims[j][i] for j in range(3)], i) for i in range(3)) / 3
    out = contrastive_loss(image, text, torch.tensor(scale))
    assert out["loss"].item() == pytest.approx((i2t + t2i) / 2, rel=1e-6)
    assert out["loss_i2t"].item() == pytest.approx(i2t, rel=1e-6)
    assert out["loss_t2i"].item() == pytest.approx(t2i, rel=1e-6)
    # best text per image: 0 -> 2 (1.0 > 0.8), 1 -> 1 (1.0), 2 -> 0 (0.96 > 0.6): one of three right
    assert out["acc"].item() == pytest.approx(1 / 3)
    # pair margin: own similarity minus the hardest other, per direction, averaged
    margins = [((sims[i][i] - max(sims[i][j] for j in range(3) if j != i))
                + (sims[i][i] - max(sims[j][i] for j in range(3) if j != i))) / 2 for i in range(3)]
    assert out["pair_margin"].tolist() == pytest.approx(margins, abs=1e-6)
    assert not out["pair_margin"].requires_grad


def test_loss_falls_when_pairs_align() -> None:
    torch.manual_seed(0)
    image = F.normalize(torch.randn(8, 4), dim=-1)
    aligned = contrastive_loss(image, image.clone(), torch.tensor(10.0))["loss"]
    shuffled = contrastive_loss(image, image.roll(1, dims=0), torch.tensor(10.0))["loss"]
    assert aligned < shuffled


def _global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Linear, torch.nn.Linear]:
    """Raw features of an 8-pair global batch and two projections, the same in every process."""
    gen = torch.Generator().manual_seed(0)
    x_img, x_txt = torch.randn(8, 5, generator=gen), torch.randn(8, 6, generator=gen)
    torch.manual_seed(1)
    return x_img, x_txt, torch.nn.Linear(5, 4), torch.nn.Linear(6, 4)


def _loss(x_img: torch.Tensor, x_txt: torch.Tensor, p_img: torch.nn.Linear, p_txt: torch.nn.Linear) -> torch.Tensor:
    return contrastive_loss(F.normalize(p_img(x_img), dim=-1), F.normalize(p_txt(x_txt), dim=-1),
                            torch.tensor(5.0))["loss"]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    join_group(rank, world, port)
    init_distributed("gloo")
    try:
        x_img, x_txt, p_img, p_txt = _global_batch()
        local = slice(rank * 4, (rank + 1) * 4)  # each rank holds 4 of the 8 pairs
        loss = _loss(x_img[local], x_txt[local], p_img, p_txt)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in (*p_img.parameters(), *p_txt.parameters())])
        dist.all_reduce(grads)  # what DDP does: the mean of the ranks' gradients
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        if rank == 0:
            torch.save({"loss": mean_loss / world, "grads": grads / world}, out)
    finally:
        shutdown_distributed()


@pytest.mark.slow
def test_gathered_loss_on_two_ranks_equals_the_single_process_loss_of_the_global_batch(tmp_path: Path) -> None:
    out = tmp_path / "ddp.pt"
    spawn(_worker, 2, str(out))
    x_img, x_txt, p_img, p_txt = _global_batch()
    loss = _loss(x_img, x_txt, p_img, p_txt)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in (*p_img.parameters(), *p_txt.parameters())])
    ddp = torch.load(out)
    assert ddp["loss"].item() == pytest.approx(loss.item(), rel=1e-5)
    # Without the gather each rank would see 3 negatives instead of 7: a different, larger-batch-blind loss.
    local_only = (_loss(x_img[:4], x_txt[:4], p_img, p_txt) + _loss(x_img[4:], x_txt[4:], p_img, p_txt)) / 2
    assert abs(local_only.item() - loss.item()) > 1e-3
    assert torch.allclose(ddp["grads"], grads, atol=1e-6), "gradients must flow back through the gather"
