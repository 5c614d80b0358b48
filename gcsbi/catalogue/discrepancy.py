"""Near-UV model discrepancy of the catalogue simulator, calibrated on Milky Way globular clusters.

Against Harris (2010) clusters with low reddening, 12-Gyr models at each cluster's [Fe/H] are too
blue in U-B (by 0.07-0.11 mag, more at high [Fe/H]) while B-V and V-I agree within a few
hundredths. The cause is the near-UV of the *cool* stars: removing the horizontal branch changes
U-B by at most 0.013 (the MIST HB of these models is red), the old model's U light comes entirely
from stars below 7000 K (:meth:`gcsbi.stars.StellarPopulation.light_fraction_below`), and U is a
MIST/C3K band of its own, so the HST transfer is not involved. The HST near-UV bands inherit the
same atmospheres (F336W through SDSS u, F275W through the u-NUV residual), so the same offset is
applied to them.

Model (a choice, stated): every star cooler than ``teff_cool`` (tapered linearly to zero at
``teff_hot``) is fainter in each near-UV band than MIST/C3K says by

    Delta([Fe/H]) = a + b ([Fe/H] - feh_pivot) + eps,   eps ~ N(0, sigma) per cluster,

``eps`` standing for what one [Fe/H] does not fix (horizontal-branch morphology, blue stragglers,
photometric zero points). To first order a band's integrated magnitude then changes by
``f_X(age, [Fe/H]) * Delta`` with ``f_X`` the fraction of the band's light from those stars;
``f_X`` is tabulated on a (log age, [Fe/H]) grid and interpolated bilinearly. Young populations,
whose near-UV comes from hot main-sequence stars, get almost no offset.

The coefficients, their covariance, ``sigma`` and the table are fitted by
``scripts/fit_near_uv.py`` (Harris clusters only, never M31 literature values) and ship as
``gcsbi/catalogue/data/near_uv_discrepancy.json`` (SHA-256 checked on load). The catalogue
simulator draws (a, b) from their uncertainty and ``eps`` once per mock, so the posterior carries
the discrepancy's uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiValueError
from ..integrity import read_json_model, write_json_model

__all__ = ["NearUVDiscrepancy", "load_near_uv", "save_near_uv", "fraction_table", "harris_residuals", "fit_delta",
           "SHIPPED_NEAR_UV", "NEAR_UV_BANDS"]

SHIPPED_NEAR_UV = Path(__file__).resolve().parent / "data" / "near_uv_discrepancy.json"
#: Bands the discrepancy applies to: the PHAT near-UV bands and Bessell U (the Harris check).
NEAR_UV_BANDS = ("U", "F275W", "F336W")
#: Largest discrepancy file read (bytes).
MAX_BYTES = 200_000


def fraction_table(log_age: np.ndarray, feh: np.ndarray, *, bands: tuple[str, ...] = NEAR_UV_BANDS,
                   teff_cool: float = 7000.0, teff_hot: float = 9000.0) -> np.ndarray:
    """f_X on the grid: (n_age, n_feh, n_bands) light fractions from cool stars (slow: one population per node)."""
    from ..stars import StellarPopulation

    out = np.empty((len(log_age), len(feh), len(bands)))
    for i, la in enumerate(log_age):
        for j, fe in enumerate(feh):
            pop = StellarPopulation(age_gyr=10.0 ** float(la) / 1e9, feh=float(fe), filters=tuple(bands))
            frac = pop.light_fraction_below(teff_cool, teff_hot)
            out[i, j] = [frac[b] for b in bands]
    return out


def harris_residuals(path: str | Path, *, max_ebv: float = 0.15, age_gyr: float = 12.0, teff_cool: float = 7000.0,
                     teff_hot: float = 9000.0) -> dict[str, np.ndarray]:
    """Harris (2010) clusters with E(B-V) <= ``max_ebv`` and U-B: dereddened U-B and B-V minus the model's.

    The model is an ``age_gyr`` population at each cluster's [Fe/H] (interpolated on a 0.1-dex grid);
    ``f_u`` is its fraction of U light from cool stars. Returns ``name``, ``feh``, ``ebv``, ``ub``, ``bv``, ``f_u``.
    """
    from ..stars import StellarPopulation, extinction_coefficients
    from ..stars.reference import read_harris_colours

    h = read_harris_colours(Path(path))
    ok = (h["ebv"] <= max_ebv) & np.isfinite(h["feh"]) & np.isfinite(h["ub"]) & (h["feh"] >= -2.5) & (h["feh"] <= 0.3)
    r = extinction_coefficients(("U", "B", "V"))
    feh = h["feh"][ok]
    grid = np.round(np.arange(-2.5, 0.31, 0.1), 2)
    pops = [StellarPopulation(age_gyr=age_gyr, feh=float(f), filters=("U", "B", "V")) for f in grid]
    mags = [p.expected_integrated_magnitudes() for p in pops]
    fu = np.array([p.light_fraction_below(teff_cool, teff_hot)["U"] for p in pops])
    return {"name": h["name"][ok], "feh": feh, "ebv": h["ebv"][ok],
            "ub": h["ub"][ok] - h["ebv"][ok] * (r["U"] - r["B"]) - np.interp(feh, grid, [m["U"] - m["B"] for m in mags]),
            "bv": h["bv"][ok] - h["ebv"][ok] * (r["B"] - r["V"]) - np.interp(feh, grid, [m["B"] - m["V"] for m in mags]),
            "f_u": np.interp(feh, grid, fu)}


def fit_delta(feh: np.ndarray, res: np.ndarray, f_u: np.ndarray, *, feh_pivot: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Least squares of ``res = f_u (a + b (feh - feh_pivot))``: (coef (2,), cov (2, 2), residual scatter)."""
    x = np.column_stack([f_u, f_u * (np.asarray(feh) - feh_pivot)])
    if len(x) < 4:
        raise GcsbiValueError(f"need at least 4 clusters to fit the discrepancy, got {len(x)}")
    coef, *_ = np.linalg.lstsq(x, res, rcond=None)
    e = res - x @ coef
    s2 = float(e @ e / (len(res) - 2))
    return coef, s2 * np.linalg.inv(x.T @ x), float(np.sqrt(s2))


@dataclass(frozen=True)
class NearUVDiscrepancy:
    """Cool-star near-UV offset Delta([Fe/H]) and the cool-light fractions it is weighted by (see module)."""

    coef: tuple[float, float]
    cov: tuple[tuple[float, float], tuple[float, float]]
    sigma: float
    feh_pivot: float
    teff_cool: float
    teff_hot: float
    bands: tuple[str, ...]
    log_age_grid: tuple[float, ...]
    feh_grid: tuple[float, ...]
    fraction: np.ndarray  # (n_age, n_feh, n_bands)
    source: str = ""

    def __post_init__(self) -> None:
        f = np.asarray(self.fraction, dtype=float)
        shape = (len(self.log_age_grid), len(self.feh_grid), len(self.bands))
        if f.shape != shape:
            raise GcsbiValueError(f"fraction table has shape {f.shape}, expected {shape}")
        if not (np.all(np.isfinite(f)) and f.min() >= 0 and f.max() <= 1 + 1e-9):
            raise GcsbiValueError("fraction table must hold finite values in [0, 1]")
        for name in ("log_age_grid", "feh_grid"):
            g = np.asarray(getattr(self, name), dtype=float)
            if g.size < 2 or not np.all(np.diff(g) > 0):
                raise GcsbiValueError(f"{name} must be increasing with >= 2 nodes")
        c = np.asarray(self.cov, dtype=float)
        if c.shape != (2, 2) or not np.all(np.isfinite(c)) or np.any(np.linalg.eigvalsh((c + c.T) / 2) < -1e-12):
            raise GcsbiValueError("cov must be a finite, positive semi-definite 2x2 matrix")
        if not (np.isfinite(self.sigma) and self.sigma >= 0):
            raise GcsbiValueError(f"sigma must be >= 0, got {self.sigma}")
        object.__setattr__(self, "fraction", f)
        object.__setattr__(self, "bands", tuple(self.bands))

    # ------------------------------------------------------------------ evaluation
    def cool_fraction(self, log_age: np.ndarray, feh: np.ndarray) -> np.ndarray:
        """f_X at each (log age, [Fe/H]): (N, n_bands), bilinear on the grid, clamped at its edges."""
        la = np.clip(np.asarray(log_age, dtype=float), self.log_age_grid[0], self.log_age_grid[-1])
        fe = np.clip(np.asarray(feh, dtype=float), self.feh_grid[0], self.feh_grid[-1])
        ga, gf = np.asarray(self.log_age_grid), np.asarray(self.feh_grid)
        i = np.clip(np.searchsorted(ga, la, side="right") - 1, 0, len(ga) - 2)
        j = np.clip(np.searchsorted(gf, fe, side="right") - 1, 0, len(gf) - 2)
        u = ((la - ga[i]) / (ga[i + 1] - ga[i]))[:, None]
        v = ((fe - gf[j]) / (gf[j + 1] - gf[j]))[:, None]
        f = self.fraction
        return ((1 - u) * (1 - v) * f[i, j] + u * (1 - v) * f[i + 1, j] + (1 - u) * v * f[i, j + 1]
                + u * v * f[i + 1, j + 1])

    def delta(self, feh: np.ndarray) -> np.ndarray:
        """Mean cool-star offset Delta([Fe/H]) (mag, > 0 = fainter than MIST/C3K)."""
        return self.coef[0] + self.coef[1] * (np.asarray(feh, dtype=float) - self.feh_pivot)

    def mean_offsets(self, log_age: np.ndarray, feh: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
        """Expected integrated offsets (N, len(bands)) in mag; 0 for bands it does not apply to."""
        return self._offsets(log_age, feh, bands, self.delta(feh))

    def draw_offsets(self, log_age: np.ndarray, feh: np.ndarray, bands: tuple[str, ...],
                     rng: np.random.Generator) -> np.ndarray:
        """Offsets (N, len(bands)) with (a, b) drawn from their uncertainty and eps ~ N(0, sigma), per row."""
        feh = np.asarray(feh, dtype=float)
        n = feh.size
        ab = rng.multivariate_normal(np.asarray(self.coef), np.asarray(self.cov), size=n, method="eigh")
        d = ab[:, 0] + ab[:, 1] * (feh - self.feh_pivot) + self.sigma * rng.standard_normal(n)
        return self._offsets(log_age, feh, bands, d)

    def _offsets(self, log_age: np.ndarray, feh: np.ndarray, bands: tuple[str, ...], d: np.ndarray) -> np.ndarray:
        la = np.atleast_1d(np.asarray(log_age, dtype=float))
        fe = np.atleast_1d(np.asarray(feh, dtype=float))
        if la.shape != fe.shape or la.ndim != 1:
            raise GcsbiValueError(f"log_age and feh must be 1-d of one length, got {la.shape} and {fe.shape}")
        frac = self.cool_fraction(la, fe)
        out = np.zeros((la.size, len(bands)))
        for k, b in enumerate(bands):
            if b in self.bands:
                out[:, k] = frac[:, self.bands.index(b)] * d
        return out

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return {"coef": [float(c) for c in self.coef], "cov": np.asarray(self.cov, float).tolist(),
                "sigma": float(self.sigma), "feh_pivot": float(self.feh_pivot), "teff_cool": float(self.teff_cool),
                "teff_hot": float(self.teff_hot), "bands": list(self.bands),
                "log_age_grid": [float(x) for x in self.log_age_grid], "feh_grid": [float(x) for x in self.feh_grid],
                "fraction": np.round(self.fraction, 6).tolist(), "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NearUVDiscrepancy:
        return cls(coef=tuple(float(c) for c in d["coef"]), cov=tuple(tuple(float(v) for v in r) for r in d["cov"]),
                   sigma=float(d["sigma"]), feh_pivot=float(d["feh_pivot"]), teff_cool=float(d["teff_cool"]),
                   teff_hot=float(d["teff_hot"]), bands=tuple(str(b) for b in d["bands"]),
                   log_age_grid=tuple(float(x) for x in d["log_age_grid"]),
                   feh_grid=tuple(float(x) for x in d["feh_grid"]), fraction=np.asarray(d["fraction"], dtype=float),
                   source=str(d.get("source", "")))


def save_near_uv(model: NearUVDiscrepancy, path: str | Path) -> Path:
    """Write ``model`` as JSON with the SHA-256 of its content; refuses to replace another kind of file."""
    return write_json_model(path, "near_uv", model.to_dict())


def load_near_uv(path: str | Path | None = None) -> NearUVDiscrepancy:
    """Read a discrepancy file (default: the shipped Harris calibration), checking its size and SHA-256."""
    path = SHIPPED_NEAR_UV if path is None else Path(path)
    return read_json_model(path, "near_uv", max_bytes=MAX_BYTES, parse=NearUVDiscrepancy.from_dict)
