"""Spherical Jeans solution by automatic differentiation: M(r), rho(r), its log slope, and sigma_los(R)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from .errors import JeansValueError
from .model import JeansFlowModel

__all__ = ["G_KPC_KMS2_MSUN", "jeans_profiles", "projected_profiles"]

G_KPC_KMS2_MSUN = 4.30091727e-6  # gravitational constant in kpc (km/s)^2 / Msun


def _check_radii(r: np.ndarray, name: str) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    if r.ndim != 1 or r.size < 2 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise JeansValueError(f"{name} must be a 1-D array of >= 2 finite positive radii (kpc)")
    return r


def jeans_profiles(model: JeansFlowModel, radii: np.ndarray) -> dict[str, np.ndarray]:
    """Profiles at ``radii`` (kpc): n, sigma_r, beta, M = -r sigma_r^2/G (dln n/dln r + dln sigma_r^2/dln r + 2 beta),
    rho = M'/(4 pi r^2) and dln rho/dln r, all derivatives by autograd (float64)."""
    r_np = _check_radii(radii, "radii")
    model = copy.deepcopy(model).double()  # float64 copy: the caller's model is left untouched
    lr = torch.tensor(np.log(r_np), dtype=torch.float64, requires_grad=True)
    r = lr.exp()
    ln_n = model.log_n(r)
    ln_s2 = torch.log(model.sigma_r2(r))
    g_n = torch.autograd.grad(ln_n.sum(), lr, create_graph=True)[0]
    g_s = torch.autograd.grad(ln_s2.sum(), lr, create_graph=True)[0]
    beta = model.beta(r)
    mass = -r * ln_s2.exp() / G_KPC_KMS2_MSUN * (g_n + g_s + 2.0 * beta)
    dm_dlr = torch.autograd.grad(mass.sum(), lr, create_graph=True)[0]
    rho = dm_dlr / (4.0 * math.pi * r**3)
    # d ln|rho| / d ln r ; guarded where rho changes sign (unphysical fit)
    drho = torch.autograd.grad(rho.sum(), lr, retain_graph=False)[0]
    slope = drho / torch.where(rho.abs() > 0, rho, torch.ones_like(rho))
    out = {
        "n": ln_n.exp(), "sigma_r": ln_s2.exp().sqrt(), "beta": beta, "mass": mass, "rho": rho,
        "slope": slope, "dlnn_dlnr": g_n, "dlns2_dlnr": g_s,
    }
    return {k: v.detach().cpu().numpy().astype(float) for k, v in out.items()}


@torch.no_grad()
def projected_profiles(model: JeansFlowModel, R: np.ndarray, *, n_z: int = 96, z_max_scale: float = 60.0
                       ) -> dict[str, np.ndarray]:
    """Surface density Sigma(R) (kpc^-2, one star normalisation) and sigma_los(R) by quadrature along the LOS:
    Sigma = 2 int n dz, Sigma sigma_los^2 = 2 int (1 - beta R^2/r^2) n sigma_r^2 dz."""
    R_np = _check_radii(R, "R")
    model = copy.deepcopy(model).double()
    Rt = torch.tensor(R_np, dtype=torch.float64)
    z_max = z_max_scale * model.L
    u = torch.linspace(0.0, 1.0, n_z, dtype=torch.float64)
    # z grid dense near 0 relative to each R: z = R * sinh(u * asinh(z_max / R))
    zmax_u = torch.asinh(z_max / Rt)[:, None]
    z = Rt[:, None] * torch.sinh(u[None, :] * zmax_u)
    dz_du = Rt[:, None] * torch.cosh(u[None, :] * zmax_u) * zmax_u
    r = torch.sqrt(Rt[:, None] ** 2 + z**2)
    n = model.log_n(r.reshape(-1)).exp().reshape(r.shape)
    s2 = model.sigma_r2(r.reshape(-1)).reshape(r.shape)
    proj = 1.0 - model.beta(r) * (Rt[:, None] / r) ** 2
    sigma = 2.0 * torch.trapezoid(n * dz_du, u, dim=1)
    ss2 = 2.0 * torch.trapezoid(proj * n * s2 * dz_du, u, dim=1)
    return {"Sigma": sigma.numpy(), "sigma_los": torch.sqrt(ss2 / sigma).numpy()}
