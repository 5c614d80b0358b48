"""Tracer light profile n(r) from positions alone: a sum of Plummer spheres fitted by maximum likelihood.

GravSphere's choice (three Plummer components, Read & Steger 2017): flexible enough for real dwarfs, with
analytic surface density, 3D density and enclosed fraction. The fit uses every star's projected radius
(membership weights respected) and the sample's outer edge, so a separate, larger photometric sample can fix
n(r) while the (smaller) spectroscopic sample only enters through its velocities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq, minimize

from .errors import JeansFileError, JeansValueError
from .parametric import plummer_cdf_2d, plummer_density, plummer_surface

__all__ = ["LightProfile", "fit_light", "read_photometry", "MIN_PHOT_STARS"]

#: fewest (effective) stars a light-profile fit accepts
MIN_PHOT_STARS = 20


@dataclass(frozen=True)
class LightProfile:
    """n(r) = sum_k w_k Plummer(r; a_k) normalised to one star (kpc^-3); ``a`` in kpc, ``w`` sum to 1."""

    a: tuple[float, ...]
    w: tuple[float, ...]

    def __post_init__(self) -> None:
        a, w = np.asarray(self.a, float), np.asarray(self.w, float)
        if a.ndim != 1 or a.shape != w.shape or a.size < 1:
            raise JeansValueError("a light profile needs matching 1-D scale radii and weights")
        if not (np.all(np.isfinite(a)) and np.all(a > 0) and np.all(np.isfinite(w)) and np.all(w >= 0)):
            raise JeansValueError(f"Plummer scale radii must be > 0 and weights >= 0, got a={self.a}, w={self.w}")
        if not math.isclose(float(w.sum()), 1.0, rel_tol=1e-6):
            raise JeansValueError(f"light-profile weights must sum to 1, got {float(w.sum())}")

    def _aw(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.a, float), np.asarray(self.w, float)

    def density(self, r) -> np.ndarray:
        """3D number density (kpc^-3, one star)."""
        a, w = self._aw()
        return np.sum(w * plummer_density(np.asarray(r, float)[..., None], a), axis=-1)

    def surface(self, R) -> np.ndarray:
        """Surface density (kpc^-2, one star)."""
        a, w = self._aw()
        return np.sum(w * plummer_surface(np.asarray(R, float)[..., None], a), axis=-1)

    def cdf2d(self, R) -> np.ndarray:
        """Fraction of stars inside projected radius R."""
        a, w = self._aw()
        return np.sum(w * plummer_cdf_2d(np.asarray(R, float)[..., None], a), axis=-1)

    def mass_fraction(self, r) -> np.ndarray:
        """Fraction of stars inside 3D radius r (for the stellar mass profile M_*(r) = M_* times this)."""
        a, w = self._aw()
        x = np.asarray(r, float)[..., None]
        return np.sum(w * x**3 / (x**2 + a**2) ** 1.5, axis=-1)

    def half_light_radius(self) -> float:
        """Projected half-number radius R_1/2 (kpc)."""
        a, _ = self._aw()
        return float(brentq(lambda R: float(self.cdf2d(R)) - 0.5, 1e-6 * a.min(), 1e3 * a.max()))

    def to_dict(self) -> dict:
        return {"kind": "plummer_sum", "a": list(self.a), "w": list(self.w)}


def _unpack(p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.exp(np.cumsum(np.concatenate([p[:1], np.exp(p[1:k])])))  # increasing scale radii
    z = np.concatenate([[0.0], p[k:]])
    w = np.exp(z - z.max())
    return a, w / w.sum()


def fit_light(R: np.ndarray, weight: np.ndarray | None = None, *, components: int = 3,
              R_max: float | None = None, seed: int = 0) -> LightProfile:
    """Maximum-likelihood sum of ``components`` Plummer spheres for projected radii ``R`` (kpc).

    Each star contributes weight * ln[2 pi R Sigma(R) / F(R_max)], with F the enclosed fraction and R_max
    the sample's outer edge (default: its largest radius); scale radii stay inside that edge. Several seeded
    starts; the best is kept.
    """
    R = np.asarray(R, float)
    w = np.ones_like(R) if weight is None else np.asarray(weight, float)
    if R.ndim != 1 or w.shape != R.shape:
        raise JeansValueError("R and weight must be 1-D arrays of the same length")
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(w))):
        raise JeansValueError("projected radii and weights must be finite")
    if np.any(R < 0) or np.any(w < 0) or np.any(w > 1):
        raise JeansValueError("projected radii must be >= 0 and weights in [0, 1]")
    good = (w > 0) & (R > 0)
    if w[good].sum() < MIN_PHOT_STARS:
        raise JeansValueError(f"need at least {MIN_PHOT_STARS} stars (sum of weights) at R > 0 for a light "
                              f"profile, got {w[good].sum():.1f}")
    if components < 1:
        raise JeansValueError(f"components must be >= 1, got {components}")
    R, w = R[good], w[good]
    R_max = float(R.max()) if R_max is None else float(R_max)
    k = components
    order = np.argsort(R)
    cw = np.cumsum(w[order])
    r_half = float(R[order][np.searchsorted(cw, 0.5 * cw[-1])])

    def nll(p: np.ndarray) -> float:
        if np.any(np.abs(p) > 30):
            return 1e30
        with np.errstate(over="ignore"):
            a, wk = _unpack(p, k)
        # a scale radius beyond the sample's edge is unidentifiable (the edge's normalisation cancels its
        # weight) and would put most "stars" far outside the data
        if not (np.all(np.isfinite(a)) and np.all(a > 0) and a.max() <= R_max):
            return 1e30
        prof = LightProfile(tuple(a), tuple(wk))
        like = np.log(2 * math.pi * R * prof.surface(R) + 1e-300) - math.log(float(prof.cdf2d(R_max)))
        return -float(np.sum(w * like)) / float(w.sum())

    rng = np.random.default_rng(seed)
    best = None
    for start in range(4 * k):
        p0 = np.concatenate([[math.log(r_half * (0.3 if k > 1 else 1.0))],
                             np.log(np.full(k - 1, 1.0)) + rng.normal(0, 0.3, k - 1),
                             rng.normal(0, 0.5, k - 1)])
        if start == 0:
            p0[k:] = 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = minimize(nll, p0, method="Nelder-Mead",
                           options={"maxiter": 4000 * k, "xatol": 1e-6, "fatol": 1e-9})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise JeansValueError("the light-profile fit failed (no finite likelihood); check the radii")
    a, wk = _unpack(best.x, k)
    return LightProfile(tuple(float(x) for x in a), tuple(float(x) for x in wk))


def read_photometry(path: str | Path, *, distance_kpc: float | None = None, fmt: str = "auto"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Projected radii (kpc) and membership weights of a positions-only sample.

    Formats: 'walker' (GravSphere's Walker photometric files: col 4 R in arcmin, col 10 membership; needs
    ``distance_kpc``), 'gaia' (x y z ... in kpc, projected along z, weight 1), 'table' ('# x y [p]' in kpc or
    '# R [p]'). 'auto' picks by header / column count (>= 11 columns: walker, 6: gaia).
    """
    from .io import ARCMIN_PER_RAD, _load, _read_text

    p = Path(path)
    if fmt == "auto":
        first = next((ln for ln in _read_text(p).splitlines() if ln.strip()), "")
        ncol = len(first.replace(",", " ").split())
        fmt = "table" if first.lstrip().startswith("#") else "walker" if ncol >= 11 else "gaia" if ncol == 6 else ""
        if not fmt:
            raise JeansFileError(f"cannot guess the format of photometry file {p}; pass fmt=")
    if fmt == "walker":
        if not (distance_kpc is not None and math.isfinite(distance_kpc) and distance_kpc > 0):
            raise JeansValueError("Walker photometry needs distance_kpc > 0")
        data, _ = _load(p, min_cols=11)
        return data[:, 4] / ARCMIN_PER_RAD * distance_kpc, np.clip(data[:, 10], 0.0, 1.0)
    if fmt == "gaia":
        data, _ = _load(p, min_cols=3)
        return np.hypot(data[:, 0], data[:, 1]), np.ones(len(data))
    if fmt == "table":
        data, header = _load(p, min_cols=1)
        if header is None or len(header) != data.shape[1]:
            raise JeansFileError(f"{p}: need a '# col col ...' header naming all {data.shape[1]} columns")
        cols = {h.lower(): data[:, i] for i, h in enumerate(header)}
        if "x" in cols and "y" in cols:
            R = np.hypot(cols["x"], cols["y"])
        elif "r" in cols:
            R = cols["r"]
        else:
            raise JeansValueError(f"{p}: photometry tables need x, y or R columns (kpc); have {header}")
        w = next((cols[c] for c in ("p", "weight", "membership") if c in cols), np.ones(len(R)))
        return R, w
    raise JeansValueError(f"unknown photometry format {fmt!r}")
