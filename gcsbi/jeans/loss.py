"""Smeared likelihood of projected data (x, y, v_los) under the 6D model, without Abel inversion."""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import JeansValueError
from .io import StarTable
from .model import JeansFlowModel

__all__ = ["smeared_log_likelihood", "stars_to_tensors"]

_LOG_2PI = math.log(2.0 * math.pi)


def stars_to_tensors(stars: StarTable) -> dict[str, torch.Tensor]:
    """Float32 tensors x, y, v, verr and normalised weights w (sum 1)."""
    w = stars.weight / stars.weight.sum()
    return {k: torch.as_tensor(np.asarray(a), dtype=torch.float32) for k, a in
            (("x", stars.x), ("y", stars.y), ("v", stars.v), ("verr", stars.verr), ("w", w))}


def smeared_log_likelihood(
    model: JeansFlowModel,
    data: dict[str, torch.Tensor],
    *,
    n_model: int,
    n_kernel: int,
    h_pos: float,
    h_vel: float,
    generator: torch.Generator,
    positions_only: bool = False,
    rao_blackwell: bool = True,
) -> torch.Tensor:
    """L = sum_a w_a 1/N_K sum_b log[1/N_G sum_c K_h(w_a + eps_b - Proj T(z_c))], Gaussian K_h.

    Positions use bandwidth ``h_pos`` (kpc); velocities ``sqrt(h_vel^2 + verr_a^2)`` (km/s), so each star's
    measurement error smears the model as well. With ``rao_blackwell`` the model's v_los draw is integrated
    analytically (v | r, theta is Gaussian with variance sigma_r^2 (1 - beta sin^2 theta)), which removes
    one source of Monte Carlo noise but leaves the estimator's expectation over z_c unchanged.
    Membership probabilities enter through the normalised weights w_a.
    """
    if n_model < 1 or n_kernel < 1:
        raise JeansValueError("n_model and n_kernel must be >= 1")
    if not (h_pos > 0 and h_vel >= 0):
        raise JeansValueError(f"bandwidths must be h_pos > 0, h_vel >= 0; got {h_pos}, {h_vel}")
    n = data["x"].shape[0]
    eps = torch.randn(n, n_kernel, 3, generator=generator)
    dx = (data["x"][:, None] + h_pos * eps[..., 0]).reshape(-1, 1)
    dy = (data["y"][:, None] + h_pos * eps[..., 1]).reshape(-1, 1)
    pos_model, var_model = model.sample_projected(n_model, generator=generator)
    d2 = (dx - pos_model[None, :, 0]) ** 2 + (dy - pos_model[None, :, 1]) ** 2
    logk = -0.5 * d2 / h_pos**2 - math.log(2.0 * math.pi * h_pos**2)
    if not positions_only:
        kv2 = (h_vel**2 + data["verr"] ** 2)[:, None].expand(n, n_kernel).reshape(-1, 1)
        dv = (data["v"][:, None] + h_vel * eps[..., 2]).reshape(-1, 1)
        if rao_blackwell:
            var = var_model[None, :] + kv2
            logk = logk - 0.5 * dv**2 / var - 0.5 * torch.log(var) - 0.5 * _LOG_2PI
        else:
            vm = var_model.clamp_min(0).sqrt() * torch.randn(n_model, generator=generator)
            logk = logk - 0.5 * (dv - vm[None, :]) ** 2 / kv2 - 0.5 * torch.log(kv2) - 0.5 * _LOG_2PI
    per = torch.logsumexp(logk, dim=1) - math.log(n_model)
    per = per.reshape(n, n_kernel).mean(dim=1)
    return (data["w"] * per).sum()
