"""JFlow phase-space model f(r, v) = n(r) N(v; 0, diag(sigma_r^2, sigma_t^2, sigma_t^2)) in physical units."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.beta import BetaModel
from ..errors import JeansValueError
from .cnf import FlowConfig, RadialCNF
from .sigma import SigmaRNet

__all__ = ["JeansFlowModel"]

_LOG_2PI = math.log(2.0 * math.pi)


class JeansFlowModel(nn.Module):
    """Spherical phase-space density in kpc and km/s: radial CNF for n(r), network for sigma_r^2(r), given beta(r).

    ``length_scale`` L (kpc) and ``velocity_scale`` V (km/s) only set the internal units of the networks.
    """

    def __init__(
        self,
        *,
        beta: BetaModel,
        length_scale: float,
        velocity_scale: float,
        flow: FlowConfig = FlowConfig(),
        sigma_hidden: int = 32,
        sigma_layers: int = 2,
    ) -> None:
        super().__init__()
        for name, val in (("length_scale", length_scale), ("velocity_scale", velocity_scale)):
            if not (math.isfinite(val) and val > 0):
                raise JeansValueError(f"{name} must be finite and > 0, got {val}")
        self.beta = beta
        self.L = float(length_scale)
        self.V = float(velocity_scale)
        self.flow = RadialCNF(flow)
        self.sigma = SigmaRNet(hidden=sigma_hidden, layers=sigma_layers)

    # ------------------------------------------------------------------ profiles (physical units)
    def log_n(self, r: torch.Tensor) -> torch.Tensor:
        """ln n(r) with n in kpc^-3, normalised so that int 4 pi r^2 n dr = 1 (r in kpc)."""
        return self.flow.log_prob_radius(r / self.L) - 3.0 * math.log(self.L)

    def sigma_r2(self, r: torch.Tensor) -> torch.Tensor:
        """Radial velocity dispersion squared (km/s)^2 at r (kpc)."""
        return self.V**2 * self.sigma(torch.log(r / self.L))

    def position_distribution(self):
        """n(r) as a torch ``Distribution`` over positions in kpc
        (:class:`~gcsbi_jeans.jflow.cnf.RadialFlowDistribution`)."""
        from .cnf import RadialFlowDistribution

        return RadialFlowDistribution(self.flow, scale=self.L)

    # ------------------------------------------------------------------ sampling
    def sample_positions(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 3) positions in kpc drawn from n(r)."""
        return self.flow.sample(n, generator=generator) * self.L

    def sample_projected(
        self, n: int, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected positions (n, 2) kpc and the LOS variance sigma_r^2 (1 - beta sin^2 theta) per sample."""
        x = self.sample_positions(n, generator=generator)
        r = x.norm(dim=-1).clamp_min(1e-10)
        sin2 = (x[:, 0] ** 2 + x[:, 1] ** 2) / r**2
        var = self.sigma_r2(r) * (1.0 - self.beta(r) * sin2)
        return x[:, :2], var

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (x, v), each (n, 3), from the 6D model (kpc, km/s)."""
        x = self.sample_positions(n, generator=generator)
        r = x.norm(dim=-1, keepdim=True).clamp_min(1e-10)
        rhat = x / r
        s_r = self.sigma_r2(r.squeeze(-1)).sqrt()
        s_t = s_r * (1.0 - self.beta(r.squeeze(-1))).clamp_min(0.0).sqrt()
        eps = torch.randn(n, 3, generator=generator)
        v_r = (eps * rhat).sum(-1, keepdim=True)
        v_tan = eps - v_r * rhat
        v = rhat * (v_r * s_r.unsqueeze(-1)) + v_tan * s_t.unsqueeze(-1)
        return x, v

    # ------------------------------------------------------------------ densities
    def log_prob(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """ln f(x, v) per kpc^3 (km/s)^3, normalised to one star."""
        if x.shape[-1] != 3 or v.shape != x.shape:
            raise JeansValueError(f"x and v must both have shape (..., 3), got {tuple(x.shape)}, {tuple(v.shape)}")
        r = x.norm(dim=-1).clamp_min(1e-10)
        v_r = (v * x).sum(-1) / r
        v_t2 = (v**2).sum(-1) - v_r**2
        s_r2 = self.sigma_r2(r)
        s_t2 = s_r2 * (1.0 - self.beta(r))
        log_v = -0.5 * (v_r**2 / s_r2 + v_t2 / s_t2) - 0.5 * (torch.log(s_r2) + 2 * torch.log(s_t2)) - 1.5 * _LOG_2PI
        return self.log_n(r) + log_v
