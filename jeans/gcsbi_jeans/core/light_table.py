"""Tabulated tracer profiles in numpy: one n(r) on a ln r grid (:class:`TabulatedLight`) and an equally weighted
ensemble of them (:class:`LightEnsemble`), with the interface of :class:`~gcsbi_jeans.core.light.LightProfile`.

They hold what the CNF light fit (:mod:`gcsbi_jeans.jflow.light`, torch) produces, so that the free-form route
uses a fitted (or cached) CNF profile without loading torch. From ln n(r) on the grid, everything else is
numerical quadrature on the same grid: the surface density Sigma(R) = 2 int_R^inf n r dr / sqrt(r^2 - R^2)
(r = R cosh t), the enclosed 3D fraction and the enclosed projected fraction. Beyond the grid, ln n continues
as a power law with the end slopes (inside: at most r^-2.9, a finite central count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import JeansValueError

__all__ = ["TabulatedLight", "LightEnsemble", "N_T"]

#: quadrature points of each line-of-sight projection of a tabulated profile
N_T = 160
#: steepest inner power law n ~ r^-g used to extrapolate inside the grid (a finite central count needs g < 3)
INNER_SLOPE_MAX = 2.9


def _cumulative(y: np.ndarray, lr: np.ndarray) -> np.ndarray:
    """Trapezoid cumulative integral of y d ln r, starting at 0."""
    return np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(lr))])


@dataclass(frozen=True, eq=False)
class TabulatedLight:
    """n(r) normalised to one star (kpc^-3), given as ``ln_n`` on the increasing grid ``ln_r`` (ln kpc).

    The table is renormalised on construction so that the enclosed fraction reaches 1 at the grid's end.
    ``background_fraction``: fit metadata as in :class:`~gcsbi_jeans.core.light.LightProfile` (the fraction of
    the fitted sample assigned to a uniform field; the profile describes the members only).
    """

    ln_r: np.ndarray
    ln_n: np.ndarray
    background_fraction: float = 0.0
    _tab: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lr = np.array(self.ln_r, dtype=float)
        ln = np.array(self.ln_n, dtype=float)
        if lr.ndim != 1 or ln.shape != lr.shape or lr.size < 16:
            raise JeansValueError(f"a tabulated light profile needs matching 1-D ln r and ln n arrays of at least "
                                  f"16 points, got shapes {lr.shape} and {ln.shape}")
        if not (np.all(np.isfinite(lr)) and np.all(np.isfinite(ln))):
            raise JeansValueError("a tabulated light profile's ln r and ln n must be finite")
        if not np.all(np.diff(lr) > 0):
            raise JeansValueError("a tabulated light profile's ln r grid must increase")
        f = self.background_fraction
        if not (isinstance(f, (int, float, np.floating)) and math.isfinite(f) and 0.0 <= f < 1.0):
            raise JeansValueError(f"background_fraction must be in [0, 1), got {f!r}")
        r = np.exp(lr)
        g_in = float(np.clip(-(ln[1] - ln[0]) / (lr[1] - lr[0]), -10.0, INNER_SLOPE_MAX))
        shell = 4.0 * math.pi * r**3 * np.exp(ln - ln.max())
        inner = shell[0] / (3.0 - g_in)  # int_0^r0 4 pi r^2 n dr for n ~ r^-g_in
        total = inner + _cumulative(shell, lr)[-1]
        ln = ln - ln.max() - math.log(total)
        lr.setflags(write=False)
        ln.setflags(write=False)
        object.__setattr__(self, "ln_r", lr)
        object.__setattr__(self, "ln_n", ln)
        object.__setattr__(self, "background_fraction", float(f))
        n = np.exp(ln)
        frac3 = (4.0 * math.pi * r[0] ** 3 * n[0] / (3.0 - g_in)) + _cumulative(4.0 * math.pi * r**3 * n, lr)
        sigma = self._project(r, lr, ln, g_in)
        ln_sigma = np.log(np.maximum(sigma, 1e-300))
        ring = 2.0 * math.pi * r**2 * sigma  # dN / d ln R
        frac2 = np.pi * r[0] ** 2 * sigma[0] + _cumulative(ring, lr)
        frac2 = frac2 / frac2[-1]
        object.__setattr__(self, "_tab", {"g_in": g_in, "frac3": np.minimum(frac3 / frac3[-1], 1.0),
                                          "ln_sigma": ln_sigma, "frac2": frac2})

    # ------------------------------------------------------------------ construction helpers
    def _ln_n_at(self, lr_q: np.ndarray, lr: np.ndarray, ln: np.ndarray, g_in: float) -> np.ndarray:
        out = np.interp(lr_q, lr, ln)
        g_out = (ln[-1] - ln[-2]) / (lr[-1] - lr[-2])
        out = np.where(lr_q < lr[0], ln[0] - g_in * (lr_q - lr[0]), out)
        return np.where(lr_q > lr[-1], ln[-1] + min(g_out, -3.5) * (lr_q - lr[-1]), out)

    def _project(self, r: np.ndarray, lr: np.ndarray, ln: np.ndarray, g_in: float) -> np.ndarray:
        """Sigma at every grid radius: 2 int_0^tmax n(R cosh t) R cosh t dt up to the grid's end (and beyond it
        along the outer power law, 10x further)."""
        r_end = 10.0 * r[-1]
        u = np.linspace(0.0, 1.0, N_T)
        wu = np.full(N_T, u[1] - u[0])
        wu[[0, -1]] *= 0.5
        tmax = np.arccosh(np.maximum(r_end / r, 1.0 + 1e-12))
        t = tmax[:, None] * u[None, :]
        rr = r[:, None] * np.cosh(t)
        n = np.exp(self._ln_n_at(np.log(rr), lr, ln, g_in))
        return 2.0 * np.sum(n * rr * (wu * tmax[:, None]), axis=1)

    # ------------------------------------------------------------------ the LightProfile interface
    def density(self, r) -> np.ndarray:
        """3D number density (kpc^-3, one star)."""
        with np.errstate(divide="ignore"):
            lq = np.log(np.asarray(r, float))
        return np.exp(self._ln_n_at(lq, self.ln_r, self.ln_n, self._tab["g_in"]))

    def surface(self, R) -> np.ndarray:
        """Surface density (kpc^-2, one star)."""
        with np.errstate(divide="ignore"):
            lq = np.log(np.asarray(R, float))
        ls = self._tab["ln_sigma"]
        slope_out = (ls[-1] - ls[-2]) / (self.ln_r[-1] - self.ln_r[-2])
        out = np.interp(lq, self.ln_r, ls)
        return np.exp(np.where(lq > self.ln_r[-1], ls[-1] + slope_out * (lq - self.ln_r[-1]), out))

    def cdf2d(self, R) -> np.ndarray:
        """Fraction of stars inside projected radius R."""
        R = np.asarray(R, float)
        with np.errstate(divide="ignore"):
            lq = np.log(np.maximum(R, 1e-300))
        f = np.interp(lq, self.ln_r, self._tab["frac2"])
        inner = self._tab["frac2"][0] * (R / math.exp(self.ln_r[0])) ** 2
        return np.where(lq < self.ln_r[0], inner, f)

    def mass_fraction(self, r) -> np.ndarray:
        """Fraction of stars inside 3D radius r."""
        r = np.asarray(r, float)
        with np.errstate(divide="ignore"):
            lq = np.log(np.maximum(r, 1e-300))
        f = np.interp(lq, self.ln_r, self._tab["frac3"])
        inner = self._tab["frac3"][0] * (r / math.exp(self.ln_r[0])) ** (3.0 - self._tab["g_in"])
        return np.where(lq < self.ln_r[0], inner, f)

    def half_light_radius(self) -> float:
        """Projected half-number radius R_1/2 (kpc)."""
        return _half_radius(self.ln_r, self._tab["frac2"])

    def to_dict(self) -> dict:
        return {"kind": "tabulated", "r_half": self.half_light_radius(),
                "background_fraction": self.background_fraction, "points": int(self.ln_r.size)}


def _half_radius(lr: np.ndarray, frac2: np.ndarray) -> float:
    j = int(np.searchsorted(frac2, 0.5))
    if j <= 0 or j >= frac2.size:
        raise JeansValueError("the tabulated light profile's half-number radius lies outside its grid")
    t = (0.5 - frac2[j - 1]) / max(frac2[j] - frac2[j - 1], 1e-300)
    return float(math.exp(lr[j - 1] + t * (lr[j] - lr[j - 1])))


@dataclass(frozen=True, eq=False)
class LightEnsemble:
    """K equally weighted tracer profiles (draws of n(r) given the photometry, e.g. bootstrap CNF fits).

    As a :class:`~gcsbi_jeans.core.light.LightProfile` it is their mixture: density, surface density and both
    enclosed fractions are the members' means (the mean of normalised densities is a normalised density, and
    every one of these is linear in n), R_1/2 that of the mean. The free-form posterior uses the members
    themselves (:attr:`members`; see :class:`~gcsbi_jeans.freeform.model.JeansKernel`). ``info``: fit metadata
    (variant, settings, cache key, fit time), JSON-serialisable.
    """

    members: tuple[TabulatedLight, ...]
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.members, tuple) and self.members
                and all(isinstance(m, TabulatedLight) for m in self.members)):
            raise JeansValueError(f"a light ensemble needs a non-empty tuple of TabulatedLight members, "
                                  f"got {type(self.members).__name__} of {len(self.members) if hasattr(self.members, '__len__') else '?'}")

    @property
    def background_fraction(self) -> float:
        return float(np.mean([m.background_fraction for m in self.members]))

    def _mean(self, name: str, x) -> np.ndarray:
        return np.mean([getattr(m, name)(x) for m in self.members], axis=0)

    def density(self, r) -> np.ndarray:
        """3D number density (kpc^-3, one star): the members' mean."""
        return self._mean("density", r)

    def member_density(self, r) -> np.ndarray:
        """Each member's n(r), shape (K, *r.shape)."""
        return np.stack([m.density(r) for m in self.members])

    def surface(self, R) -> np.ndarray:
        return self._mean("surface", R)

    def cdf2d(self, R) -> np.ndarray:
        return self._mean("cdf2d", R)

    def mass_fraction(self, r) -> np.ndarray:
        return self._mean("mass_fraction", r)

    def half_light_radius(self) -> float:
        """Projected half-number radius of the mixture (kpc)."""
        lr = self.members[0].ln_r
        return _half_radius(lr, self.cdf2d(np.exp(lr)))

    def to_dict(self) -> dict:
        halves = [m.half_light_radius() for m in self.members]
        return {"kind": "cnf_ensemble", "members": len(self.members), "r_half": self.half_light_radius(),
                "r_half_members": halves, "background_fraction": self.background_fraction,
                "background_fraction_members": [m.background_fraction for m in self.members], **self.info}
