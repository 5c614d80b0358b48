"""Dark-matter annihilation J-factor J(theta) = int_cone int_los rho^2 dl dOmega from rho(r) draws."""

from __future__ import annotations

import math

import numpy as np

from ..errors import JeansValueError

__all__ = ["j_factor", "MSUN_GEV", "KPC_CM", "J_UNIT"]

MSUN_GEV = 1.98840987e30 * 299792458.0**2 / 1.602176634e-10  # Msun c^2 in GeV
KPC_CM = 3.0856775814913673e21
J_UNIT = MSUN_GEV**2 / KPC_CM**5  # Msun^2 kpc^-5 -> GeV^2 cm^-5


def j_factor(r: np.ndarray, rho: np.ndarray, *, distance_kpc: float, angle_deg: float = 0.5,
             r_trunc: float | None = None) -> np.ndarray:
    """log10 J (GeV^2 cm^-5) inside a cone of half-angle ``angle_deg`` for rho(r) (Msun kpc^-3) on a log grid.

    With R_t = D sin(theta) and the halo truncated at ``r_trunc`` (kpc), J = (4 pi / D^2) int r^2 rho^2 f(r) dr,
    where f = 1 for r <= R_t and 1 - sqrt(1 - R_t^2 / r^2) outside: the part of each spherical shell that lies
    inside the cylinder the (small) cone cuts through the halo. Below the first grid point rho is continued
    with its local power law. ``rho`` may hold one profile per row.
    """
    r = np.asarray(r, float)
    rho = np.atleast_2d(np.asarray(rho, float))
    if r.ndim != 1 or rho.shape[-1] != r.size or r.size < 3 or np.any(np.diff(np.log(r)) <= 0):
        raise JeansValueError("r must be an increasing 1-D grid matching rho's last axis")
    if not (math.isfinite(distance_kpc) and distance_kpc > 0 and 0 < angle_deg < 90):
        raise JeansValueError("distance must be > 0 kpc and the angle in (0, 90) degrees")
    if np.any(~np.isfinite(rho)) or np.any(rho < 0):
        raise JeansValueError("rho must be finite and >= 0")
    R_t = distance_kpc * math.sin(math.radians(angle_deg))
    r_trunc = float(r[-1]) if r_trunc is None else float(r_trunc)
    with np.errstate(invalid="ignore"):
        f = np.where(r <= R_t, 1.0, 1.0 - np.sqrt(np.clip(1.0 - (R_t / r) ** 2, 0.0, 1.0)))
    f = np.where(r <= r_trunc, f, 0.0)
    lr = np.log(r)
    y = r**3 * rho**2 * f
    total = np.sum(0.5 * (y[:, 1:] + y[:, :-1]) * np.diff(lr), axis=1)
    # inner power-law continuation: int_0^r0 r^2 rho0^2 (r/r0)^(-2 gamma) dr
    gamma0 = -(np.log(rho[:, 1]) - np.log(rho[:, 0])) / (lr[1] - lr[0])
    total += np.where(gamma0 < 1.5, rho[:, 0] ** 2 * r[0] ** 3 / np.maximum(3.0 - 2.0 * gamma0, 1e-9), np.inf)
    return np.log10(4.0 * math.pi * total / distance_kpc**2 * J_UNIT)
