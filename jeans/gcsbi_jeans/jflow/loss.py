"""Smeared likelihood of projected data (x, y, v_los) under the 6D model, without Abel inversion."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.io import StarTable
from ..errors import JeansValueError
from .model import JeansFlowModel

__all__ = ["smeared_log_likelihood", "stars_to_tensors", "kernel_width"]

_LOG_2PI = math.log(2.0 * math.pi)


def stars_to_tensors(stars: StarTable) -> dict[str, torch.Tensor]:
    """Float32 tensors x, y, v, verr and normalised weights w (sum 1)."""
    w = stars.weight / stars.weight.sum()
    return {k: torch.as_tensor(np.asarray(a), dtype=torch.float32) for k, a in
            (("x", stars.x), ("y", stars.y), ("v", stars.v), ("verr", stars.verr), ("w", w))}


def kernel_width(R: torch.Tensor, *, h_pos: float, length_scale: float) -> torch.Tensor:
    """Positional kernel width h(R) = h_pos sqrt(1 + (R/L)^2): constant in the core, ~R in the tails."""
    return h_pos * torch.sqrt(1.0 + (R / length_scale) ** 2)


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
    adaptive: bool = True,
) -> torch.Tensor:
    """L = sum_a w_a 1/N_K sum_b log[1/N_G sum_c K_h(w_a + eps_b - Proj T(z_c))] with Gaussian K_h.

    Positions: width ``h_pos`` (kpc), or with ``adaptive`` the sample-point width h(R) of :func:`kernel_width`
    (the same smoothing operator is applied to data, via eps_b, and to the model, via its samples' widths, so
    the loss is still minimised when model = data; fixed widths leave stars in the outskirts with no model
    sample within many h). Velocities: width sqrt(h_vel^2 + verr_a^2) km/s, so each star's measurement error
    smears the model. With ``rao_blackwell`` the model's v_los draw is integrated analytically
    (v | r, theta is Gaussian with variance sigma_r^2 (1 - beta sin^2 theta)), which removes Monte Carlo
    noise but not the estimator's expectation. Membership probabilities enter as the normalised weights w_a.
    """
    if n_model < 1 or n_kernel < 1:
        raise JeansValueError("n_model and n_kernel must be >= 1")
    if not (h_pos > 0 and h_vel >= 0):
        raise JeansValueError(f"bandwidths must be h_pos > 0, h_vel >= 0; got {h_pos}, {h_vel}")
    n = data["x"].shape[0]
    L = model.L
    eps = torch.randn(n, n_kernel, 3, generator=generator)
    if adaptive:
        h_a = kernel_width(torch.hypot(data["x"], data["y"]), h_pos=h_pos, length_scale=L)[:, None]
    else:
        h_a = torch.full((n, 1), h_pos)
    dx = (data["x"][:, None] + h_a * eps[..., 0]).reshape(-1, 1)
    dy = (data["y"][:, None] + h_a * eps[..., 1]).reshape(-1, 1)
    pos_model, var_model = model.sample_projected(n_model, generator=generator)
    if adaptive:
        h_c = kernel_width(pos_model.norm(dim=-1), h_pos=h_pos, length_scale=L)[None, :]
    else:
        h_c = torch.full((1, n_model), h_pos)
    d2 = (dx - pos_model[None, :, 0]) ** 2 + (dy - pos_model[None, :, 1]) ** 2
    logk = -0.5 * d2 / h_c**2 - torch.log(2.0 * math.pi * h_c**2)
    if not positions_only:
        kv2 = (h_vel**2 + data["verr"] ** 2)[:, None].expand(n, n_kernel).reshape(-1, 1)
        dv = (data["v"][:, None] + h_vel * eps[..., 2]).reshape(-1, 1)
        if rao_blackwell:
            var = var_model[None, :] + kv2
            logk = logk - 0.5 * dv**2 / var - 0.5 * torch.log(var) - 0.5 * _LOG_2PI
        else:
            if float(kv2.min()) <= 0:
                raise JeansValueError("rao_blackwell=False needs h_vel > 0 or non-zero velocity errors")
            vm = var_model.clamp_min(0).sqrt() * torch.randn(n_model, generator=generator)
            logk = logk - 0.5 * (dv - vm[None, :]) ** 2 / kv2 - 0.5 * torch.log(kv2) - 0.5 * _LOG_2PI
    per = torch.logsumexp(logk, dim=1) - math.log(n_model)
    per = per.reshape(n, n_kernel).mean(dim=1)
    return (data["w"] * per).sum()
