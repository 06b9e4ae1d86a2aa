"""The symmetric InfoNCE loss of CLIP, with negatives from the global batch under DDP.

For a batch of ``B`` matched pairs with L2-normalised image features ``I`` and text features
``T``, the logits are ``s * I @ T.T`` (``s = 1 / temperature``); row ``i`` is a ``B``-way
classification whose answer is column ``i``. The loss averages the image-to-text and the
text-to-image cross-entropies.

Under DDP every rank gathers the features of every rank with
``torch.distributed.nn.functional.all_gather``, whose backward sends each rank's gradient back to
the rank that produced the features: each rank's local rows are scored against all ``W * B``
columns, so the mean of the ranks' losses (what DDP's gradient averaging optimises) is the loss
of the global batch.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

from framework import CHANCE_LOSS


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(local: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` features of this rank -> ``(W * B, D)`` of every rank, in rank order, with
    gradients flowing back to each rank's own features.

    Raises:
        ValueError: when ranks hold different batch sizes (train with ``drop_last``).
    """
    rank, world = _world()
    if world == 1:
        return local
    from torch.distributed.nn.functional import all_gather

    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], device=local.device))
    if len({int(s) for s in sizes}) != 1:
        raise ValueError(f"rank {rank}: batch sizes differ across ranks ({[int(s) for s in sizes]}); "
                         f"the contrastive loss needs equal ones (drop_last=True)")
    return torch.cat(all_gather(local), dim=0)


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, *, gather: bool = True
) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE of matched pairs.

    Args:
        image: ``(B, D)`` L2-normalised image features; row ``i`` matches ``text[i]``.
        text: ``(B, D)`` L2-normalised text features.
        logit_scale: ``1 / temperature`` (a scalar tensor, already clamped).
        gather: Take negatives from every DDP rank (when a process group is initialised).

    Returns:
        ``{"loss", "loss_i2t", "loss_t2i", "acc", "pair_margin"}``: ``acc`` is the fraction of this
        rank's images whose own caption scores highest; ``pair_margin`` (``(B,)``) is each pair's
        cosine similarity minus that of its hardest negative, averaged over both directions (the
        training dynamics the misalignment audit reads). Both detached.
    """
    rank, world = _world() if gather else (0, 1)
    all_image = gather_features(image) if world > 1 else image  # (W*B, D)
    all_text = gather_features(text) if world > 1 else text  # (W*B, D)
    targets = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]  # (B,)
    logits_i2t = logit_scale * image @ all_text.T  # (B, W*B)
    logits_t2i = logit_scale * text @ all_image.T  # (B, W*B)
    loss_i2t = F.cross_entropy(logits_i2t.float(), targets)
    loss_t2i = F.cross_entropy(logits_t2i.float(), targets)
    acc = (logits_i2t.argmax(dim=-1) == targets).float().mean()
    return {"loss": (loss_i2t + loss_t2i) / 2, "loss_i2t": loss_i2t.detach(), "loss_t2i": loss_t2i.detach(),
            "acc": acc.detach(), "pair_margin": _pair_margin(logits_i2t, logits_t2i, targets, logit_scale),
            # the loss of features that match nothing: every candidate equally likely
            CHANCE_LOSS: math.log(logits_i2t.shape[1])}


@torch.no_grad()
def _pair_margin(logits_i2t: torch.Tensor, logits_t2i: torch.Tensor, targets: torch.Tensor,
                 logit_scale: torch.Tensor) -> torch.Tensor:
    """``(B,)`` own-pair similarity minus the hardest negative's, mean of both directions."""
    cols = targets[:, None]
    margins = []
    for logits in (logits_i2t, logits_t2i):
        sim = logits.detach().float() / logit_scale.detach().float()  # (B, W*B) cosine similarities
        own = sim.gather(1, cols).squeeze(1)
        if sim.shape[1] < 2:
            margins.append(own)
            continue
        margins.append(own - sim.scatter(1, cols, float("-inf")).amax(dim=1))
    return (margins[0] + margins[1]) / 2
