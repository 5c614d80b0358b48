"""The PHAT-catalogue observation model: curves of growth -> what Johnson et al. (2015) report.

For each mock cluster (see :mod:`gcsbi.catalogue.photometry` for the aperture measurement):

1. **Aperture radius** ``Rap``. In the catalogue it was set from the Andromeda Project
   volunteers' size measurements; it correlates with the cluster's size and brightness. Fit to
   the 2743 catalogue clusters with a Reff (``fit_catalogue_model``)::

       log10 Rap = 0.3255 + 0.3541 log10 Reff - 0.0461 (F475W - 20)   (rms 0.051 dex)

   and drawn per mock with the mock's noiseless projected half-light radius (F475W, whole
   stamp) and total F475W magnitude, with the scatter inflated to ``rap_scatter = 0.08`` dex
   (the relation is defined with the measured Reff) and clipped to ``rap_range`` (the upper end
   is set by the stamp: 1.7 Rap must fit in 6.4").
2. **Magnitudes** in the aperture with local background subtraction, Vega zero points of the
   simulator spec; photometric error ``e_phot`` from the noise model.
3. **Catalogue-level noise.** The catalogue's errors are far larger than photon noise (crowding
   and background fluctuations dominate: a median 0.17 mag at F814W = 19). Per band we fit the
   catalogue's own error distribution as a function of magnitude (detections, errors >= 0.01 mag)::

       log10 e_cat = a + b (m - 20) + N(0, s)
       F275W: a=-1.1612 b=0.1977 s=0.293 ; F336W: -1.2823 0.1789 0.299 ; F475W: -1.2890 0.1799 0.268
       F814W: -0.7480 0.1821 0.268 ; F110W: -0.6181 0.1470 0.303 ; F160W: -0.4817 0.1478 0.295

   A mock draws ``e_cat`` at its magnitude; the reported error is ``max(e_cat, e_phot)`` and the
   magnitude is perturbed by ``N(0, sqrt(max(e_cat^2 - e_phot^2, 0) + systematic_mag^2))``. The
   per-band ``systematic_mag`` floor stands for zero-point and stellar-model systematics, so that
   bright clusters with a catalogue error of 0.00 are not fitted to better than the models are
   good: 0.03 mag, 0.08 in F336W and 0.10 in F275W, where the HST transfer misses known spectra
   by up to 0.17 and 0.21 mag (Vega; :func:`gcsbi.stars.bolometric.transfer_from_spectrum`).
4. **Reff**: half-light radius of the background-subtracted F475W light inside Rap, from the
   noisy image (as measured on real data).
5. **Rounding** to 0.01 (mag, mag, arcsec), as in the catalogue. A band detected below
   ``limit_sigma`` (3) sigma -- its flux below 3 x the photometric error, or its catalogue error
   above 1.0857 / 3 = 0.36 mag -- is reported as an upper limit: the 3-sigma limiting magnitude
   with error :data:`LIMIT_ERROR` (= 1.0, the catalogue's largest error). Johnson et al. (2015)
   report limits the same way (``l_<band> = '>'``).
6. **Missing bands.** Each band is absent (outside that camera's footprint) with the catalogue's
   own frequency ``missing_fraction`` (3% for UVIS, 7% for IR); :func:`drop_bands` applies it to
   training mocks so that a posterior uses whatever bands a cluster has.

The network sees :func:`features` of the catalogue values (2 x n_bands + 2 numbers)::

    [m_1 - 18, ..., m_n - 18, log10 e_1, ..., log10 e_n, log10 Reff, log10 Rap]

errors floored at 0.005 (half the rounding step), Reff at 0.02"; a missing band is
``(0, log10 MISSING_ERROR = 1)``, an upper limit ``(limit - 18, log10 1.0 = 0)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import GcsbiValueError
from ..stars.reference import PHAT_BANDS
from .photometry import ANNULUS, aperture_from_cog, half_light_radius

__all__ = ["BANDS", "FEATURES", "LIMIT_ERROR", "MISSING_ERROR", "CatalogueModel", "features", "feature_names",
           "drop_bands", "catalogue_values_from_features", "fit_catalogue_model"]

#: The six PHAT bands (Johnson et al. 2015), blue to red.
BANDS: tuple[str, ...] = PHAT_BANDS
LIMIT_ERROR = 1.0
#: Error given to a band the cluster was not observed in (network input only).
MISSING_ERROR = 10.0


def feature_names(bands: Sequence[str]) -> tuple[str, ...]:
    """Names of the :func:`features` columns for ``bands``."""
    return (*bands, *(f"log_e_{b}" for b in bands), "log_Reff", "log_Rap")


FEATURES: tuple[str, ...] = feature_names(BANDS)
MAG_OFFSET = 18.0
ERR_FLOOR = 0.005
REFF_FLOOR = 0.02


@dataclass(frozen=True)
class CatalogueModel:
    """Parameters of the catalogue observation model (module docstring); JSON-able via ``to_dict``."""

    rap_coeffs: tuple[float, float, float] = (0.3255, 0.3541, -0.0461)
    rap_scatter: float = 0.08
    rap_range: tuple[float, float] = (0.5, 3.75)
    err_coeffs: dict[str, tuple[float, float, float]] = field(default_factory=lambda: {
        "F275W": (-1.1612, 0.1977, 0.293), "F336W": (-1.2823, 0.1789, 0.299), "F475W": (-1.2890, 0.1799, 0.268),
        "F814W": (-0.7480, 0.1821, 0.268), "F110W": (-0.6181, 0.1470, 0.303), "F160W": (-0.4817, 0.1478, 0.295)})
    systematic_mag: dict[str, float] | float = field(default_factory=lambda: {
        "F275W": 0.10, "F336W": 0.08, "F475W": 0.03, "F814W": 0.03, "F110W": 0.03, "F160W": 0.03})
    missing_fraction: dict[str, float] = field(default_factory=lambda: {
        "F275W": 0.033, "F336W": 0.032, "F475W": 0.004, "F814W": 0.003, "F110W": 0.077, "F160W": 0.072})
    annulus: tuple[float, float] = ANNULUS
    reff_band: str = "F475W"
    limit_sigma: float = 3.0
    rounding: bool = True

    def check_bands(self, bands: Sequence[str]) -> None:
        """Raise :class:`GcsbiValueError` unless every band has its error model, floor and missing fraction."""
        for name in ("err_coeffs", "systematic_mag", "missing_fraction"):
            table = getattr(self, name)
            missing = [b for b in bands if isinstance(table, Mapping) and b not in table]
            if missing:
                raise GcsbiValueError(f"CatalogueModel.{name} lacks band(s) {missing}")

    def systematic(self, band: str) -> float:
        """The model-systematics floor (mag) of ``band``."""
        s = self.systematic_mag
        return float(s[band]) if isinstance(s, Mapping) else float(s)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["err_coeffs"] = {k: list(v) for k, v in self.err_coeffs.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CatalogueModel":
        kw = dict(d)
        for k in ("rap_coeffs", "rap_range", "annulus"):
            if k in kw:
                kw[k] = tuple(float(v) for v in kw[k])
        if "err_coeffs" in kw:
            kw["err_coeffs"] = {**cls().err_coeffs, **{b: tuple(float(v) for v in c) for b, c in kw["err_coeffs"].items()}}
        return cls(**kw)

    # ------------------------------------------------------------------ pieces
    def draw_rap(self, r_half_arcsec: np.ndarray, m475: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a, b, c = self.rap_coeffs
        lr = a + b * np.log10(np.clip(r_half_arcsec, 0.02, None)) + c * (m475 - 20.0)
        lr = lr + self.rap_scatter * rng.standard_normal(np.shape(lr))
        return np.clip(10.0 ** lr, *self.rap_range)

    def draw_catalogue_error(self, band: str, mag: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a, b, s = self.err_coeffs[band]
        le = a + b * (np.asarray(mag) - 20.0) + s * rng.standard_normal(np.shape(mag))
        return np.clip(10.0 ** le, 0.0, LIMIT_ERROR)

    def median_catalogue_error(self, band: str, mag: np.ndarray | float) -> np.ndarray:
        a, b, _ = self.err_coeffs[band]
        return np.clip(10.0 ** (a + b * (np.asarray(mag, dtype=float) - 20.0)), 0.0, LIMIT_ERROR)

    # ------------------------------------------------------------------ measure
    def measure(self, profiles: Mapping[str, np.ndarray], *, radii: np.ndarray, npix: np.ndarray,
                zeropoints: np.ndarray, exposure_s: np.ndarray, rng: np.random.Generator,
                bands: Sequence[str] = BANDS, rap: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Catalogue values for N mocks from their curves of growth (:func:`~.simulator.split_profiles`).

        Returns ``mag`` (N, F), ``err`` (N, F), ``reff`` (N,), ``rap`` (N,), ``upper_limit`` (N, F) bool and
        the noiseless truth ``mag_true`` (N, F) (whole stamp) and ``r_half_true`` (N,) arcsec.
        """
        noisy, var, clean, total = (np.asarray(profiles[k], dtype=np.float64) for k in ("noisy", "var", "clean", "total"))
        n = noisy.shape[0]
        bands = list(bands)
        self.check_bands(bands)
        if noisy.shape[1] != len(bands):
            raise GcsbiValueError(f"profiles hold {noisy.shape[1]} bands but bands={bands}")
        ib = bands.index(self.reff_band)
        zp, t = np.asarray(zeropoints, float), np.asarray(exposure_s, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag_true = zp - 2.5 * np.log10(total / t)
        r_half = _radius_at_fraction(clean[:, ib], total[:, ib], radii)
        if rap is None:
            rap = self.draw_rap(r_half, mag_true[:, ib], rng)
        rap = np.broadcast_to(np.asarray(rap, dtype=float), (n,)).copy()
        if rap.max() * self.annulus[1] > radii[-1] + 1e-9:
            raise GcsbiValueError(f"Rap up to {rap.max():.2f}\" needs a background annulus beyond the stamp "
                                  f"({radii[-1]:.2f}\"); use a larger stamp")
        res = aperture_from_cog(noisy, var, npix, radii, rap[:, None], self.annulus)
        flux, sig = res.flux, res.flux_err
        limit = ~(flux > self.limit_sigma * sig)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = zp - 2.5 * np.log10(np.where(limit, self.limit_sigma * sig, flux) / t)
            e_phot = 2.5 / np.log(10.0) * sig / flux
        err = np.empty_like(mag)
        sn_error = 2.5 / np.log(10.0) / self.limit_sigma  # 0.36 mag: a 3-sigma detection
        for j, b in enumerate(bands):
            e_cat = self.draw_catalogue_error(b, mag[:, j], rng)
            extra = np.sqrt(np.clip(e_cat**2 - e_phot[:, j] ** 2, 0.0, None) + self.systematic(b) ** 2)
            mag[:, j] = mag[:, j] + extra * rng.standard_normal(n)
            err[:, j] = np.maximum(e_cat, e_phot[:, j])
            faint = ~limit[:, j] & (err[:, j] > sn_error)  # below 3 sigma at the catalogue's noise level
            mag[:, j] = np.where(faint, mag[:, j] - 2.5 * np.log10(err[:, j] / sn_error), mag[:, j])
            limit[:, j] |= faint
        err = np.where(limit, LIMIT_ERROR, np.clip(err, 0.0, LIMIT_ERROR))
        reff = half_light_radius(noisy[:, ib], npix, radii, rap, self.annulus)
        reff = np.where(np.isfinite(reff), reff, 0.0)
        if self.rounding:
            mag, err, reff, rap = (np.round(v, 2) for v in (mag, err, reff, rap))
        return {"mag": mag, "err": err, "reff": reff, "rap": rap, "upper_limit": limit,
                "mag_true": mag_true, "r_half_true": r_half}


def _radius_at_fraction(cog: np.ndarray, total: np.ndarray, radii: np.ndarray, frac: float = 0.5) -> np.ndarray:
    """Radius where a (noiseless, monotonic) curve of growth reaches ``frac * total`` (N,)."""
    out = np.empty(len(cog))
    r2 = np.concatenate([[0.0], radii**2])
    for i in range(len(cog)):
        c = np.concatenate([[0.0], np.maximum.accumulate(cog[i])])
        target = frac * total[i]
        if not target > 0:
            out[i] = np.nan
        elif target >= c[-1]:
            out[i] = radii[-1]
        else:
            out[i] = np.sqrt(np.interp(target, c, r2))
    return out


def drop_bands(values: Mapping[str, np.ndarray], bands: Sequence[str], model: "CatalogueModel",
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Catalogue values with bands made missing (NaN) at the catalogue's ``missing_fraction``; one band stays."""
    out = dict(values)
    mag, err, lim = (np.array(values[k], dtype=float if k != "upper_limit" else bool) for k in ("mag", "err", "upper_limit"))
    model.check_bands(bands)
    p = np.array([model.missing_fraction[b] for b in bands])
    gone = rng.random(mag.shape) < p
    all_gone = gone.all(axis=1)
    gone[all_gone, rng.integers(0, len(bands), int(all_gone.sum()))] = False
    mag[gone], err[gone], lim[gone] = np.nan, np.nan, False
    out.update(mag=mag, err=err, upper_limit=lim)
    return out


def features(mag: np.ndarray, err: np.ndarray, reff: np.ndarray, rap: np.ndarray) -> np.ndarray:
    """Network input (N, 2F + 2) float32 from catalogue values (see module docstring); NaN mag = missing band."""
    mag, err = np.atleast_2d(np.asarray(mag, float)), np.atleast_2d(np.asarray(err, float))
    reff, rap = np.atleast_1d(np.asarray(reff, float)), np.atleast_1d(np.asarray(rap, float))
    if err.shape != mag.shape or reff.shape != mag.shape[:1] or rap.shape != reff.shape:
        raise GcsbiValueError(f"catalogue values: expected mag/err (N, F), reff/rap (N,), got "
                              f"{mag.shape}, {err.shape}, {reff.shape}, {rap.shape}")
    if np.any(rap <= 0):
        raise GcsbiValueError("aperture radius Rap must be positive")
    missing = ~np.isfinite(mag)
    if np.any(~missing & ~np.isfinite(err)):
        raise GcsbiValueError("a band with a magnitude needs a finite error")
    m = np.where(missing, MAG_OFFSET, mag)
    e = np.where(missing, MISSING_ERROR, err)
    x = np.concatenate([m - MAG_OFFSET, np.log10(np.maximum(e, ERR_FLOOR)),
                        np.log10(np.maximum(reff, REFF_FLOOR))[:, None], np.log10(rap)[:, None]], axis=1)
    return x.astype(np.float32)


def catalogue_values_from_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`features` (errors and Reff below their floors come back at the floor; missing = NaN)."""
    x = np.atleast_2d(np.asarray(x, float))
    nb = (x.shape[1] - 2) // 2
    err = 10.0 ** x[:, nb:2 * nb]
    missing = err >= MISSING_ERROR * 0.999
    return {"mag": np.where(missing, np.nan, x[:, :nb] + MAG_OFFSET), "err": np.where(missing, np.nan, err),
            "reff": 10.0 ** x[:, 2 * nb], "rap": 10.0 ** x[:, 2 * nb + 1]}


def fit_catalogue_model(table: Any) -> dict[str, Any]:
    """Refit the Rap relation, the error-vs-magnitude model and the missing-band fractions on a PHAT table."""
    def col(c: str) -> np.ndarray:
        v = table[c]
        return np.asarray(v.filled(np.nan) if hasattr(v, "filled") else v, dtype=float)

    rap, reff, g = col("Rap"), col("Reff"), col("F475W")
    ok = np.isfinite(reff) & (reff > 0.05) & np.isfinite(g)
    a = np.c_[np.ones(ok.sum()), np.log10(reff[ok]), g[ok] - 20.0]
    c, *_ = np.linalg.lstsq(a, np.log10(rap[ok]), rcond=None)
    out: dict[str, Any] = {"rap_coeffs": tuple(float(v) for v in c),
                           "rap_rms": float(np.std(np.log10(rap[ok]) - a @ c)), "err_coeffs": {},
                           "missing_fraction": {}}
    for band in BANDS:
        m, e = col(band), col("e_" + band)
        out["missing_fraction"][band] = float(np.mean(~np.isfinite(m)))
        s = np.isfinite(m) & np.isfinite(e) & (e >= 0.01)
        a = np.c_[np.ones(s.sum()), m[s] - 20.0]
        c, *_ = np.linalg.lstsq(a, np.log10(e[s]), rcond=None)
        out["err_coeffs"][band] = (float(c[0]), float(c[1]), float(np.std(np.log10(e[s]) - a @ c)))
    return out
