"""Parametric spherical Jeans model in numpy: Plummer/Zhao light, Zhao dark halo, any beta(r), sigma_los(R)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import hyp2f1

from ..errors import JeansValueError
from .beta import BetaModel

__all__ = ["zhao_density", "zhao_mass", "plummer_density", "plummer_surface", "plummer_cdf_2d",
           "sigma_los_parametric", "G_KPC_KMS2_MSUN"]

G_KPC_KMS2_MSUN = 4.30091727e-6


def zhao_density(r, rho0: float, rs: float, alpha: float = 1.0, beta: float = 3.0, gamma: float = 1.0):
    """rho = rho0 (r/rs)^-gamma (1 + (r/rs)^alpha)^(-(beta-gamma)/alpha)."""
    x = np.asarray(r, float) / rs
    return rho0 * x ** (-gamma) * (1.0 + x**alpha) ** (-(beta - gamma) / alpha)


def zhao_mass(r, rho0: float, rs: float, alpha: float = 1.0, beta: float = 3.0, gamma: float = 1.0):
    """Enclosed mass of a Zhao profile: 4 pi rho0 rs^3 x^(3-g)/(3-g) 2F1((b-g)/a, (3-g)/a; (3-g)/a + 1; -x^a)."""
    if gamma >= 3:
        raise JeansValueError(f"Zhao inner slope gamma must be < 3, got {gamma}")
    x = np.asarray(r, float) / rs
    c = (3.0 - gamma) / alpha
    return 4.0 * math.pi * rho0 * rs**3 * x ** (3.0 - gamma) / (3.0 - gamma) * hyp2f1(
        (beta - gamma) / alpha, c, c + 1.0, -(x**alpha))


def plummer_density(r, a: float):
    """Plummer number density normalised to one star."""
    return 3.0 / (4.0 * math.pi * a**3) * (1.0 + (np.asarray(r) / a) ** 2) ** -2.5


def plummer_surface(R, a: float):
    """Plummer surface density normalised to one star."""
    return 1.0 / (math.pi * a**2) * (1.0 + (np.asarray(R) / a) ** 2) ** -2


def plummer_cdf_2d(R, a: float):
    """Fraction of stars within projected radius R."""
    R2 = np.asarray(R) ** 2
    return R2 / (R2 + a**2)


def sigma_los_parametric(R: np.ndarray, *, nu, mass, beta: BetaModel, r_min: float, r_max: float,
                         n_r: int = 256, n_t: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma, sigma_los) at projected radii R for tracer density ``nu(r)`` in potential with ``mass(r)``.

    nu sigma_r^2 (r) = 1/g(r) int_r^inf g nu G M / s^2 ds with g = exp(int 2 beta/r dr); then
    Sigma sigma_los^2 = 2 int_R^inf (1 - beta R^2/r^2) nu sigma_r^2 r dr / sqrt(r^2 - R^2) (r = R cosh t).
    """
    lr = np.linspace(math.log(r_min), math.log(r_max), n_r)
    r = np.exp(lr)
    lg = beta.log_g(r)
    lg = lg - lg.max()
    integrand = np.exp(lg) * nu(r) * G_KPC_KMS2_MSUN * mass(r) / r  # (g nu G M / s^2) * s  for d ln s
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(lr))])
    tail = cum[-1] - cum
    nus2 = tail / np.exp(lg)
    R = np.asarray(R, float)
    tmax = np.arccosh(np.maximum(r_max / R, 1.0 + 1e-9))
    t = np.linspace(0.0, 1.0, n_t)[None, :] * tmax[:, None]
    rr = R[:, None] * np.cosh(t)
    with np.errstate(divide="ignore"):
        log_nus2 = np.interp(np.log(rr), lr, np.log(np.maximum(nus2, 1e-300)))
    proj = 1.0 - beta(rr) * (R[:, None] / rr) ** 2
    # r dr / sqrt(r^2 - R^2) = r dt for r = R cosh t
    ss2 = 2.0 * np.trapezoid(proj * np.exp(log_nus2) * rr, t, axis=1)
    sig = 2.0 * np.trapezoid(nu(rr) * rr, t, axis=1)
    return sig, np.sqrt(np.maximum(ss2, 0.0) / sig)
