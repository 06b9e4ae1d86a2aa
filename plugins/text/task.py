"""The text tasks: a causal LM with its SFT or DPO loss, in one module each.

The task's ``state_dict`` is what checkpoints hold (under LoRA, base weights and adapters). The
DPO reference policy is never a second model: under LoRA it is the same model with its adapters
disabled (``PeftModel.disable_adapter()``, under ``no_grad``); otherwise its log-probs are
computed once before training and travel with each batch (``ref_chosen``/``ref_rejected``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plugins.text.model import decoder_layers, is_peft
from plugins.text.packing import IGNORE, targets

#: Architectures whose logits are exactly ``get_output_embeddings()(last hidden state)``: for
#: them :func:`target_logps` runs the decoder and projects only the loss positions. Others (final
#: logit soft-capping, logit scales...) compute every position's logits through their own forward.
HEAD_ONLY = frozenset({"llama", "mistral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "phi3", "olmo", "olmo2",
                       "smollm3", "gemma", "starcoder2", "stablelm"})


class _LMTask(nn.Module):
    """What both text tasks share: the model, and the blocks FSDP shards one by one."""

    model: nn.Module

    def fsdp_units(self) -> list[nn.Module]:
        """The transformer blocks (``trainer.distributed=fsdp`` shards each on its own)."""
        return decoder_layers(self.model)


def token_logps(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each label token ``(B, T-1)`` and the label mask ``(B, T-1)``.

    Position ids restart per packed example, so no attention mask is passed (see
    :mod:`plugins.text.packing`); ``use_cache=False`` keeps transformers on the packed-mask path.
    """
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    logits = logits[:, :-1].float()  # (B, T-1, V): position t predicts token t+1
    labels = batch["labels"][:, 1:]  # (B, T-1)
    mask = labels != IGNORE
    logps = -F.cross_entropy(logits.transpose(1, 2), labels.masked_fill(~mask, 0), reduction="none")
    return logps * mask, mask


def head_only(model: nn.Module) -> bool:
    """True when ``model``'s logits are its output embedding applied to its decoder's last hidden
    state (:data:`HEAD_ONLY` architectures), so the loss positions can be projected alone."""
    base = model.get_base_model() if is_peft(model) else model
    config = getattr(base, "config", None)
    return (getattr(config, "model_type", None) in HEAD_ONLY and hasattr(base, "get_decoder")
            and getattr(config, "final_logit_softcapping", None) is None)


def target_logps(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each loss position's next token ``(N,)`` and its row ``(N,)``.

    The loss positions come from the batch (``target_index``, ``target_ids``, ``target_row`` of
    :func:`plugins.text.packing.targets`, made on the host by the collator; derived here when
    absent). For :func:`head_only` models only those positions' hidden states are projected onto
    the vocabulary: the ``(B, T, V)`` logits, the largest activation of a small LM, are never
    made, and neither is their gradient. Other models compute every position's logits and keep
    the loss positions'.
    """
    found = batch if "target_index" in batch else targets(batch["labels"])
    index, ids, rows = found["target_index"], found["target_ids"], found["target_row"]
    inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"], "use_cache": False}
    if head_only(model):
        base = model.get_base_model() if is_peft(model) else model
        hidden = base.get_decoder()(**inputs).last_hidden_state
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)
        logits = base.get_output_embeddings()(picked)
    else:
        full = model(**inputs).logits
        logits = full.reshape(-1, full.shape[-1]).index_select(0, index)
    return -F.cross_entropy(logits.float(), ids, reduction="none"), rows


def sequence_logps(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each row's labelled tokens ``(B,)`` and their count ``(B,)``."""
    logps, rows = target_logps(model, batch)
    size = batch["input_ids"].shape[0]
    total = logps.new_zeros(size).index_add(0, rows, logps)
    return total, torch.bincount(rows, minlength=size)


class SFTTask(_LMTask):
    """Causal LM + next-token cross-entropy on the trained (assistant) tokens.

    Args:
        model: A transformers causal LM (or a peft model around one).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Mean loss over the batch's trained tokens.

        Args:
            batch: ``input_ids``, ``labels``, ``position_ids`` ``(B, T)``; ``tokens`` (int).

        Returns:
            ``{"loss": scalar, "tokens": int}`` (``tokens`` feeds the engine's tokens/s).
        """
        logps, _ = target_logps(self.model, batch)
        loss = -logps.sum() / max(logps.shape[0], 1)  # the count is known on the host: no sync
        return {"loss": loss, "tokens": batch.get("tokens", 0)}


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, *, beta: float, loss_type: str = "sigmoid",
             label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair preference losses ``(B,)`` and the implicit rewards of both sides ``(B,)``.

    With ``h = (pi_c - ref_c) - (pi_r - ref_r)`` (log-ratios of the policy to the reference):

    * ``sigmoid`` (DPO, Rafailov et al. 2023): ``-(1-e) log s(beta h) - e log s(-beta h)``, ``e`` the
      label smoothing (conservative DPO);
    * ``ipo`` (Azar et al. 2023): ``(h - 1/(2 beta))^2``; pass length-normalised log-probs;
    * ``hinge`` (SLiC): ``max(0, 1 - beta h)``.

    Rewards are ``beta * (pi - ref)`` per side.
    """
    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * h) * (1 - label_smoothing) - F.logsigmoid(-beta * h) * label_smoothing
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    else:
        raise ValueError(f"unknown DPO loss {loss_type!r}; use sigmoid, ipo or hinge")
    return losses, beta * (policy_chosen - ref_chosen).detach(), beta * (policy_rejected - ref_rejected).detach()


class DPOTask(_LMTask):
    """Causal LM + DPO loss against a reference policy that is not a second model copy.

    Args:
        model: The policy (a peft model when ``reference == "adapters_off"``).
        beta: DPO's beta.
        loss_type: ``sigmoid``, ``ipo`` or ``hinge``.
        label_smoothing: Label smoothing of the sigmoid loss.
        reference: ``adapters_off`` or ``precomputed`` (batches then carry ``ref_chosen`` and
            ``ref_rejected``).
    """

    def __init__(self, model: nn.Module, beta: float = 0.1, loss_type: str = "sigmoid",
                 label_smoothing: float = 0.0, reference: str = "adapters_off") -> None:
        super().__init__()
        self.model = model
        self.beta, self.loss_type, self.label_smoothing, self.reference = beta, loss_type, label_smoothing, reference

    def side_logps(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """Per-row scores ``(2B,)``: summed log-probs, or their per-token mean for IPO."""
        total, count = sequence_logps(model, batch)
        return total / count.clamp(min=1) if self.loss_type == "ipo" else total

    @torch.no_grad()
    def reference_logps(self, batch: dict[str, Any]) -> torch.Tensor:
        """The reference policy's per-row scores ``(2B,)``: the model with adapters disabled."""
        with self.model.disable_adapter():
            return self.side_logps(self.model, batch)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """DPO loss of ``B`` pairs (``2B`` rows, chosen first) and the logged figures.

        Returns:
            ``loss``; ``rewards/chosen``, ``rewards/rejected``, ``rewards/margin``,
            ``rewards/accuracy`` (share of pairs whose chosen reward is higher), ``logps/chosen``,
            ``logps/rejected`` (means over the batch), and ``tokens``.
        """
        scores = self.side_logps(self.model, batch)  # (2B,)
        pairs = scores.shape[0] // 2
        if "ref_chosen" in batch:
            ref_c, ref_r = batch["ref_chosen"], batch["ref_rejected"]
        else:
            ref = self.reference_logps(batch)
            ref_c, ref_r = ref[:pairs], ref[pairs:]
        losses, r_c, r_r = dpo_loss(scores[:pairs], scores[pairs:], ref_c, ref_r, beta=self.beta,
                                    loss_type=self.loss_type, label_smoothing=self.label_smoothing)
        return {
            "loss": losses.mean(),
            "rewards/chosen": r_c.mean(), "rewards/rejected": r_r.mean(),
            "rewards/margin": (r_c - r_r).mean(), "rewards/accuracy": (r_c > r_r).float().mean(),
            "logps/chosen": scores[:pairs].detach().mean(), "logps/rejected": scores[pairs:].detach().mean(),
            "tokens": batch.get("tokens", 0),
        }
