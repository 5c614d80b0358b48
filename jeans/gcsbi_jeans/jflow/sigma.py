"""JFlow's radial velocity dispersion: a small network for sigma_r^2(r)."""

from __future__ import annotations

import torch
from torch import nn

from .cnf import tanh_mlp

__all__ = ["SigmaRNet"]


class SigmaRNet(nn.Module):
    """sigma_r^2(r) = V^2 softplus(MLP(ln(r/L))): smooth, positive radial dispersion profile."""

    def __init__(self, *, hidden: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.net = tanh_mlp(1, hidden=hidden, layers=layers)
        with torch.no_grad():  # start near sigma_r = V (softplus(0.54) = 1)
            self.net[-1].bias.fill_(0.5413)

    def forward(self, log_r_scaled: torch.Tensor) -> torch.Tensor:
        """sigma_r^2 in units of V^2 at ln(r/L)."""
        return nn.functional.softplus(self.net(log_r_scaled.unsqueeze(-1)).squeeze(-1))
