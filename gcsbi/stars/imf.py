"""Initial mass functions (Kroupa 2001, Chabrier 2003) with exact tabulated cumulative integrals and sampling."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["IMF", "IMF_KINDS", "kroupa_xi", "chabrier_xi"]

IMF_KINDS: tuple[str, ...] = ("kroupa", "chabrier")
_NGRID = 200_001


def kroupa_xi(m: np.ndarray) -> np.ndarray:
    """Kroupa (2001) dN/dm (unnormalised): slopes 0.3 / 1.3 / 2.3 broken at 0.08 and 0.5 M_sun."""
    m = np.asarray(m, dtype=float)
    low = (m / 0.08) ** -0.3 * (0.08 / 0.5) ** -1.3
    return np.where(m < 0.08, low, np.where(m < 0.5, (m / 0.5) ** -1.3, (m / 0.5) ** -2.3))


def chabrier_xi(m: np.ndarray) -> np.ndarray:
    """Chabrier (2003, Table 1 single stars) dN/dm (unnormalised): log-normal below 1 M_sun, slope 2.3 above."""
    m = np.asarray(m, dtype=float)
    lognorm = np.exp(-((np.log10(m) - np.log10(0.079)) ** 2) / (2 * 0.69**2)) / m
    at1 = np.exp(-((0.0 - np.log10(0.079)) ** 2) / (2 * 0.69**2))
    return np.where(m <= 1.0, lognorm, at1 * m**-2.3)


@lru_cache(maxsize=None)
def _tables(kind: str, m_min: float, m_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """ln m grid, cumulative number and mass normalised to unit total mass (per M_sun formed), and the norm."""
    lnm = np.linspace(np.log(m_min), np.log(m_max), _NGRID)
    m = np.exp(lnm)
    xi = (kroupa_xi if kind == "kroupa" else chabrier_xi)(m)
    dn = xi * m  # dN/dln m
    dm = dn * m
    h = np.diff(lnm)
    cn = np.concatenate([[0.0], np.cumsum(0.5 * (dn[1:] + dn[:-1]) * h)])
    cm = np.concatenate([[0.0], np.cumsum(0.5 * (dm[1:] + dm[:-1]) * h)])
    norm = cm[-1]
    return lnm, cn / norm, cm / norm, float(norm)


@dataclass(frozen=True)
class IMF:
    """An IMF on [m_min, m_max] normalised per solar mass formed (number and mass integrals are exact tables)."""

    kind: str = "kroupa"
    m_min: float = 0.1
    m_max: float = 120.0

    def __post_init__(self) -> None:
        if self.kind not in IMF_KINDS:
            raise GcsbiValueError(f"unknown IMF {self.kind!r}; supported: {IMF_KINDS}")
        if not (0.01 <= self.m_min < self.m_max <= 300.0):
            raise GcsbiValueError(f"need 0.01 <= m_min < m_max <= 300, got {self.m_min}, {self.m_max}")

    def _t(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _tables(self.kind, float(self.m_min), float(self.m_max))[:3]

    def number(self, m: np.ndarray) -> np.ndarray:
        """Number of stars with mass below ``m`` per M_sun formed."""
        lnm, cn, _ = self._t()
        return np.interp(np.log(np.clip(m, self.m_min, self.m_max)), lnm, cn)

    def mass(self, m: np.ndarray) -> np.ndarray:
        """Initial mass in stars below ``m`` per M_sun formed."""
        lnm, _, cm = self._t()
        return np.interp(np.log(np.clip(m, self.m_min, self.m_max)), lnm, cm)

    @property
    def mean_mass(self) -> float:
        return float(1.0 / self._t()[1][-1])

    def pdf(self, m: np.ndarray) -> np.ndarray:
        """dN/dm per M_sun formed (zero outside [m_min, m_max])."""
        m = np.asarray(m, dtype=float)
        xi = (kroupa_xi if self.kind == "kroupa" else chabrier_xi)(np.clip(m, self.m_min, self.m_max))
        norm = _tables(self.kind, float(self.m_min), float(self.m_max))[3]
        return np.where((m >= self.m_min) & (m <= self.m_max), xi / norm, 0.0)

    def sample(
        self, n: int, rng: np.random.Generator, *, m_lo: float | None = None, m_hi: float | None = None
    ) -> np.ndarray:
        """Draw ``n`` masses from the IMF restricted to [m_lo, m_hi] (inverse CDF, explicit ``rng``)."""
        if not isinstance(rng, np.random.Generator):
            raise GcsbiValueError("rng must be a numpy.random.Generator")
        lo = self.m_min if m_lo is None else max(float(m_lo), self.m_min)
        hi = self.m_max if m_hi is None else min(float(m_hi), self.m_max)
        if n < 0 or lo > hi:
            raise GcsbiValueError(f"bad sample request n={n}, m_lo={lo}, m_hi={hi}")
        lnm, cn, _ = self._t()
        c_lo, c_hi = np.interp(np.log([lo, hi]), lnm, cn)
        u = c_lo + (c_hi - c_lo) * rng.random(int(n))
        return np.exp(np.interp(u, cn, lnm))
