"""JFlow's spherical Jeans solution by automatic differentiation: M(r), rho(r), its log slope, and sigma_los(R)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.parametric import G_KPC_KMS2_MSUN
from ..errors import JeansValueError
from .model import JeansFlowModel

__all__ = ["G_KPC_KMS2_MSUN", "jeans_profiles", "projected_profiles", "ProfileValidity", "profile_validity",
           "format_radii"]


def _check_radii(r: np.ndarray, name: str) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    if r.ndim != 1 or r.size < 2 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise JeansValueError(f"{name} must be a 1-D array of >= 2 finite positive radii (kpc)")
    return r


def jeans_profiles(model: JeansFlowModel, radii: np.ndarray) -> dict[str, np.ndarray]:
    """Profiles at ``radii`` (kpc): n, sigma_r, beta, M = -r sigma_r^2/G (dln n/dln r + dln sigma_r^2/dln r + 2 beta),
    rho = M'/(4 pi r^2) and dln rho/dln r, all derivatives by autograd (float64).

    The values are raw: M comes from the fitted n and sigma_r, so nothing makes it increase and rho = M'/(4 pi r^2)
    can be <= 0 (a 2% wiggle in n or sigma_r^2 is enough). :func:`profile_validity` finds where; the ensemble
    (:func:`~gcsbi_jeans.jflow.fit.fit_ensemble`) drops such members and says so.
    """
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


@dataclass(frozen=True)
class ProfileValidity:
    """Where Jeans profiles of an ensemble are physical (rho > 0, M(<r) > 0 and increasing, all finite).

    ``valid`` (members,): no unphysical point inside the data range. ``reasons``: one string per member, '' if
    valid, else what failed and at which radii (kpc). ``bad`` (members, radii): unphysical points, anywhere on the
    grid. ``bad_inside`` (members, radii): those that decide ``valid`` (a drop of M counts when its whole grid
    interval lies in the range). ``inside`` (radii,): the radii the data cover (all True without a range).
    """

    valid: np.ndarray
    reasons: list[str]
    bad: np.ndarray
    bad_inside: np.ndarray
    inside: np.ndarray


def format_radii(radius: np.ndarray, mask: np.ndarray) -> str:
    """The grid radii (kpc) where ``mask`` holds, as runs of neighbouring grid points: '0.0123-0.0456, 0.8'."""
    order = np.argsort(radius, kind="stable")
    r, idx = np.asarray(radius, float)[order], np.flatnonzero(np.asarray(mask, bool)[order])
    if idx.size == 0:
        return ""
    groups = np.split(idx, np.flatnonzero(np.diff(idx) != 1) + 1)
    return ", ".join(f"{r[g[0]]:.3g}" if g.size == 1 else f"{r[g[0]]:.3g}-{r[g[-1]]:.3g}" for g in groups)


def profile_validity(radius: np.ndarray, rho: np.ndarray, mass: np.ndarray,
                     r_range: tuple[float, float] | None = None) -> ProfileValidity:
    """Check each member's Jeans profiles on the grid ``radius`` (kpc): rho > 0, M(<r) > 0, both finite, and M
    increasing between neighbouring grid radii (this catches a sign change of rho between grid points).

    ``rho`` and ``mass`` have shape (members, radii) (or (radii,)). Only radii within ``r_range`` = (lo, hi),
    the radii the data cover, decide ``valid``; ``bad`` marks unphysical points everywhere. Nothing is changed.
    """
    r = _check_radii(radius, "radius")
    if r_range is not None and not (np.all(np.isfinite(r_range)) and 0 <= r_range[0] <= r_range[1]):
        raise JeansValueError(f"r_range must be (lo, hi) with 0 <= lo <= hi, got {r_range}")
    rho, mass = (np.atleast_2d(np.asarray(a, float)) for a in (rho, mass))
    if rho.shape != mass.shape or rho.shape[1] != r.size:
        raise JeansValueError(f"rho {rho.shape} and mass {mass.shape} must both have shape (members, {r.size})")
    order = np.argsort(r, kind="stable")
    r, rho, mass = r[order], rho[:, order], mass[:, order]
    inside = np.ones(r.size, bool) if r_range is None else (r >= r_range[0]) & (r <= r_range[1])
    finite = np.isfinite(rho) & np.isfinite(mass)
    checks = {
        "non-finite rho or M": ~finite,
        "rho <= 0": finite & (rho <= 0),
        "M(<r) <= 0": finite & (mass <= 0),
    }
    # M must increase from each grid radius to the next; a drop marks both ends of its interval, and counts
    # inside the data range when the whole interval lies in it
    step = np.diff(mass, axis=1)
    step = np.isfinite(step) & (step <= 0) & (np.diff(r) > 0)[None, :]
    step_in = step & inside[:-1] & inside[1:]
    drop, drop_in = np.zeros_like(finite), np.zeros_like(finite)
    for d, st in ((drop, step), (drop_in, step_in)):
        d[:, 1:] |= st
        d[:, :-1] |= st
    bad = drop.copy()
    for m in checks.values():
        bad |= m
        m &= inside
    checks["M(<r) decreases"] = drop_in
    reasons = ["; ".join(f"{name} at r = {format_radii(r, m[k])} kpc" for name, m in checks.items() if m[k].any())
               for k in range(rho.shape[0])]
    bad_inside = np.logical_or.reduce(list(checks.values()))
    unsort = np.empty_like(order)
    unsort[order] = np.arange(order.size)
    return ProfileValidity(valid=~bad_inside.any(axis=1), reasons=reasons, bad=bad[:, unsort],
                           bad_inside=bad_inside[:, unsort], inside=inside[unsort])
