"""Exponential moving average of a model's weights, kept in a frozen copy of the model."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """``ema = decay * ema + (1 - decay) * weights`` after every optimizer step.

    Floating-point parameters and buffers are averaged; integer buffers (BatchNorm's step count)
    are copied. The copy lives on the model's device and is always in eval mode.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"trainer.ema_decay={decay} must be between 0 and 1 (e.g. 0.999)")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average one step towards ``module``'s current weights."""
        ema_state, live_state = self.module.state_dict(), module.state_dict()
        floats = [k for k, v in ema_state.items() if v.is_floating_point()]
        torch._foreach_lerp_([ema_state[k] for k in floats], [live_state[k] for k in floats], 1.0 - self.decay)
        for key, value in ema_state.items():
            if not value.is_floating_point():
                value.copy_(live_state[key])

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights, for ``state.pt``."""
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.module.load_state_dict(state)
