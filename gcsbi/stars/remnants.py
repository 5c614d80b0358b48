"""Stellar remnants: initial-final mass relation (Cummings et al. 2018 for WDs; simple NS/BH) and WD cooling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GcsbiValueError
from .bolometric import LOG_G_SUN, TEFF_SUN

__all__ = ["RemnantModel", "wd_mass", "wd_cooling"]


def wd_mass(m_init: np.ndarray) -> np.ndarray:
    """White-dwarf mass from initial mass: Cummings et al. (2018, ApJ 866, 21), MIST-based piecewise-linear IFMR.

    Segments 0.83-2.85, 2.85-3.60, 3.60-7.20 M_sun; extended linearly below 0.83 and above 7.2, capped at 1.38.
    """
    m = np.asarray(m_init, dtype=float)
    mf = np.where(m < 2.85, 0.080 * m + 0.489, np.where(m < 3.60, 0.187 * m + 0.184, 0.107 * m + 0.471))
    return np.minimum(mf, 1.38)


def wd_cooling(mass: np.ndarray, t_cool_yr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log L, log Teff, log g) of a C/O white dwarf from Mestel's law and the Nauenberg (1972) mass-radius relation.

    Mestel (1952): L/L_sun = M/M_sun * (t_cool / 8.8 Myr)^-1.4 (A = 12, mu = 2), t_cool floored at 10^5 yr.
    Good to ~0.3 dex in L for t_cool > 10^8 yr; WDs carry < 1 % of the optical light of old populations.
    """
    m = np.asarray(mass, dtype=float)
    t = np.maximum(np.asarray(t_cool_yr, dtype=float), 1e5)
    log_l = np.log10(m) - 1.4 * np.log10(t / 8.8e6)
    x = np.clip(m / 1.44, 1e-3, 0.999)
    r = 0.0112 * np.sqrt(x ** (-2.0 / 3.0) - x ** (2.0 / 3.0))  # R_sun
    log_teff = np.log10(TEFF_SUN) + 0.25 * (log_l - 2 * np.log10(r))
    log_g = LOG_G_SUN + np.log10(m) - 2 * np.log10(r)
    return log_l, log_teff, log_g


@dataclass(frozen=True)
class RemnantModel:
    """Which initial masses make WDs / NSs / BHs, and their masses.

    WD below ``m_ns_min`` (Cummings 2018 IFMR); NS of ``ns_mass`` for ``m_ns_min`` <= M_i < ``m_bh_min``;
    BH of ``bh_fraction`` * M_i above (a simple prescription, roughly the range of Fryer et al. 2012 /
    Raithel et al. 2018 at low metallicity; not metallicity dependent). Retention fractions are the
    probabilities that a NS / BH stays in the cluster (natal kicks).
    """

    m_ns_min: float = 8.0
    m_bh_min: float = 20.0
    ns_mass: float = 1.4
    bh_fraction: float = 0.4
    ns_retention: float = 0.1
    bh_retention: float = 0.1

    def __post_init__(self) -> None:
        for name in ("ns_retention", "bh_retention"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise GcsbiValueError(f"{name}={v} outside [0, 1]")
        if not (1.0 < self.m_ns_min < self.m_bh_min):
            raise GcsbiValueError("need 1 < m_ns_min < m_bh_min")
        if not (0.0 < self.bh_fraction <= 1.0 and 0.5 < self.ns_mass < 3.0):
            raise GcsbiValueError("bh_fraction must be in (0, 1] and ns_mass in (0.5, 3)")

    def bh_mass(self, m_init: np.ndarray) -> np.ndarray:
        return self.bh_fraction * np.asarray(m_init, dtype=float)
