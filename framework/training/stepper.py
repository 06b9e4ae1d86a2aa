"""The optimizer step and what surrounds it: AdamW, fp16 loss scaling, clipping, the lr, EMA.

:class:`OptimizerStepper` keeps these out of the loop's main path: the loop scales a loss, asks for
the norm to check, then either :meth:`~OptimizerStepper.step` or :meth:`~OptimizerStepper.skip`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from framework.training.ema import ModelEMA

GradNorm = Callable[[Iterable[nn.Parameter]], Optional[torch.Tensor]]


def build_adamw(module: nn.Module, *, lr: float, betas: tuple[float, float], weight_decay: float,
                device: torch.device, param_groups: Optional[list[dict[str, Any]]] = None) -> torch.optim.AdamW:
    """AdamW over ``module``'s trainable parameters, weight decay only where ``ndim >= 2``.

    ``param_groups`` (each may carry its own ``lr``) replace the default decay/no-decay split.
    """
    if param_groups is None:
        params = [p for p in module.parameters() if p.requires_grad]
        # Biases and norm scales (ndim < 2) are not decayed: decay would pull them to zero.
        param_groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        param_groups = [g for g in param_groups if g["params"]]
    # The fused kernel (CUDA, and CPU since torch 2.4) updates every tensor in one pass: on a
    # CPU it is several times faster than the per-tensor loop that is AdamW's default there.
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(param_groups, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)


class OptimizerStepper:
    """Takes optimizer steps on ``module``: scaled (fp16), clipped, at the scheduled lr, then EMA.

    Args:
        module: The module the optimizer updates (the EMA follows it).
        optimizer: Its optimizer; each group's current ``lr`` is its base lr.
        grad_norm: The strategy's gradient norm (``None`` when no parameter has a gradient).
        fp16: Scale losses with a ``GradScaler``, which skips inf/NaN-gradient steps itself.
        ema: The EMA copy to update after each step, if any.
        clip_grad_norm: Clip the total gradient norm to this; ``None`` does not clip.
    """

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, *, grad_norm: GradNorm,
                 fp16: bool = False, device_type: str = "cpu", ema: Optional[ModelEMA] = None,
                 clip_grad_norm: Optional[float] = None) -> None:
        self.module, self.optimizer, self.ema, self.clip = module, optimizer, ema, clip_grad_norm
        self.scaler: Optional[torch.amp.GradScaler] = torch.amp.GradScaler(device_type) if fp16 else None
        self.params: list[nn.Parameter] = [p for group in optimizer.param_groups for p in group["params"]]
        self.base_lrs: list[float] = [float(group["lr"]) for group in optimizer.param_groups]
        self.lr = self.base_lrs[0] if self.base_lrs else 0.0
        self._grad_norm = grad_norm

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to backpropagate (scaled under fp16)."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def norm_to_check(self) -> Optional[torch.Tensor]:
        """The gradient norm to check for NaN/inf before stepping; ``None`` under fp16, whose scaler
        checks the gradients itself (only the loss is checked then)."""
        return self._grad_norm(self.params) if self.scaler is None else None

    def step(self, norm: Optional[torch.Tensor], lr_factor: float, *, need_norm: bool) -> Optional[torch.Tensor]:
        """Clip, set the lr to ``base * lr_factor``, step, zero the gradients, update the EMA.

        Args:
            norm: From :meth:`norm_to_check` (``None`` under fp16: computed after unscaling).
            lr_factor: The schedule's factor for this step.
            need_norm: The caller logs the norm this step (else it is computed only to clip).

        Returns:
            The pre-clip gradient norm when clipping or ``need_norm``, else ``None``.
        """
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
            norm = self._grad_norm(self.params) if self.clip is not None or need_norm else None
        if self.clip is not None and norm is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip, norm, foreach=True)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * lr_factor
        self.lr = self.base_lrs[0] * lr_factor
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.module)
        return norm if self.clip is not None or need_norm else None

    def skip(self) -> None:
        """Drop the accumulated gradients of a step that will not be taken."""
        self.optimizer.zero_grad(set_to_none=True)

    def eval_module(self, module: nn.Module) -> nn.Module:
        """The module to evaluate: the EMA copy when there is one, else ``module``."""
        return self.ema.module if self.ema is not None else module

    def reset_ema(self) -> None:
        """Restart the EMA from the module's current weights (after ``init_from`` loaded new ones)."""
        if self.ema is not None:
            self.ema.module.load_state_dict(self.module.state_dict())

    def finish(self, task: nn.Module) -> bool:
        """At the end of training: copy the EMA weights into ``task`` (what evaluate and export
        read); returns whether there were any."""
        if self.ema is None:
            return False
        task.load_state_dict(self.ema.module.state_dict())
        return True

    def state_dict(self) -> dict[str, Any]:
        """Scaler, EMA and base lrs for ``state.pt`` (the optimizer's own state comes from the strategy)."""
        return {"base_lrs": list(self.base_lrs),
                "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                "ema": self.ema.state_dict() if self.ema is not None else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
