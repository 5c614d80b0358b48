"""Galactic background: a synthetic crowded field, or a bank of real cutouts.

(a) :class:`FieldBackground` -- field stars of the host galaxy at the
cluster's distance, uniformly spread over the padded stamp, with a total
surface brightness ``mu`` (observed Vega mag/arcsec^2 in a reference band).
A pool of absolute magnitudes is drawn once from a *sampler*
``sampler(n, rng) -> abs_mag (n, F)``: :func:`stellar_population_sampler`, a
``gcsbi.stars`` population of the age and [Fe/H] set in the spec's ``[background]``
(``population_age_gyr``, ``population_feh``), or any callable passed as
``ObservationModel.from_spec(field_sampler=...)`` (e.g. the cheap
:func:`luminosity_function_sampler`).
Per mock, stars brighter than ``resolved_mag_limit`` (apparent, reference
band) are drawn from the pool (Poisson number) and rendered through the same
PSF chain; the fainter ones are added as smooth light with their mean colour
(exact expectation of the pool, no sampling noise beyond Poisson photon noise).

(b) :class:`BackgroundBank` -- user cutouts (FITS or ``.npy``, (F, H', W') in
e-, the spec's filters in order, same pixel scale and exposure as the
instrument), added with a random rotation by a multiple of 90 deg, a random
flip and a random crop, all drawn from the call's generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import GcsbiFileError, GcsbiValueError

__all__ = [
    "FieldSampler",
    "luminosity_function_sampler",
    "stellar_population_sampler",
    "FieldBackground",
    "BackgroundBank",
]

FieldSampler = Callable[[int, np.random.Generator], np.ndarray]

# Rough colours of an old, metal-rich (bulge/disc-like) giant-dominated
# population relative to V, for luminosity_function_sampler.
_LF_COLOUR_TO_V = {
    "U": 1.3, "B": 0.95, "V": 0.0, "R": -0.55, "I": -1.15,
    "F275W": 2.8, "F336W": 1.25, "F475W": 0.55, "F814W": -1.15, "F110W": -1.6, "F160W": -2.5,
    "F070W": -0.75, "F115W": -1.9, "F356W": -2.9,
}  # fmt: skip


def luminosity_function_sampler(
    filters: Sequence[str], *, slope: float = 0.3, m_bright: float = -3.0, m_faint: float = 8.0,
    colour_scatter: float = 0.1,
) -> FieldSampler:  # fmt: skip
    """Cheap analytic sampler: ``dN/dM_V ~ 10**(slope M_V)`` on ``[m_bright, m_faint]``, fixed colours.

    A crude stand-in for an old galaxy population (RGB-like luminosity
    function slope 0.3 dex/mag, colours of a K giant with Gaussian scatter),
    for tests and quick experiments (pass it as ``field_sampler=``).
    """
    unknown = [f for f in filters if f not in _LF_COLOUR_TO_V]
    if unknown:
        raise GcsbiValueError(f"field luminosity function has no colours for {unknown}")
    offs = np.array([_LF_COLOUR_TO_V[f] for f in filters])
    a = np.log(10.0) * slope

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(n)
        lo, hi = np.exp(a * m_bright), np.exp(a * m_faint)
        mv = np.log(lo + u * (hi - lo)) / a  # inverse CDF of the exponential LF
        return mv[:, None] + offs[None, :] + colour_scatter * rng.standard_normal((n, offs.size))

    return sample


def stellar_population_sampler(filters: Sequence[str], *, age_gyr: float, feh: float) -> FieldSampler:
    """Field stars of a :class:`gcsbi.stars.StellarPopulation` of ``age_gyr`` and ``feh``.

    The simulator takes both from the spec's ``[background]`` table (``population_age_gyr``,
    ``population_feh``).
    """
    from ..stars import StellarPopulation

    pop = StellarPopulation(age_gyr=age_gyr, feh=feh, filters=tuple(filters))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        # ~0.5 Msun per star for an old population: sample enough mass for n particles
        parts = pop.sample(current_mass=2.0 * n, rng=rng)
        mags = np.asarray(parts.abs_mag, dtype=np.float64)
        mags = mags[np.all(np.isfinite(mags), axis=1)]
        if mags.shape[0] == 0:
            raise GcsbiValueError("field population sampler returned no luminous stars")
        return mags[rng.integers(0, mags.shape[0], n)]

    return sample


@dataclass(frozen=True, eq=False)
class FieldBackground:
    """Static field-star model: a pool of absolute magnitudes sorted by the reference band."""

    filters: tuple[str, ...]
    reference: int  # index of the reference band
    pool: np.ndarray  # (N, F) absolute mags, sorted by the reference band
    mean_ref_flux: float  # <10**(-0.4 M_ref)> over the pool
    faint_flux: np.ndarray  # (N+1, F): sum_{i>=k} 10**(-0.4 M_i) / N

    @classmethod
    def build(
        cls,
        sampler: FieldSampler,
        *,
        filters: Sequence[str],
        reference_filter: str,
        pool_size: int,
        seed: int = 20240601,
    ) -> FieldBackground:
        """Draw the pool once (fixed ``seed``, so a model is reproducible)."""
        filters = tuple(filters)
        if reference_filter not in filters:
            raise GcsbiValueError(f"reference filter {reference_filter!r} not in {filters}")
        pool = np.asarray(sampler(int(pool_size), np.random.default_rng(seed)), dtype=np.float64)
        if pool.ndim != 2 or pool.shape[1] != len(filters) or pool.shape[0] < 1:
            raise GcsbiValueError(f"field sampler must return (n, {len(filters)}) magnitudes, got {pool.shape}")
        if not np.all(np.isfinite(pool)):
            raise GcsbiValueError("field sampler returned NaN/inf magnitudes")
        r = filters.index(reference_filter)
        pool = pool[np.argsort(pool[:, r], kind="stable")]
        lin = np.power(10.0, -0.4 * pool)
        faint = np.zeros((pool.shape[0] + 1, len(filters)))
        faint[:-1] = np.cumsum(lin[::-1], axis=0)[::-1]
        faint /= pool.shape[0]
        return cls(filters=filters, reference=r, pool=pool, mean_ref_flux=float(lin[:, r].mean()),
                   faint_flux=faint)  # fmt: skip

    def sample(
        self,
        rng: np.random.Generator,
        *,
        surface_brightness: float,
        resolved_mag_limit: float,
        distance_modulus: float,
        extinction_mag: np.ndarray,
        area_arcsec2: float,
        max_stars: int = 2_000_000,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Resolved field stars and smooth light for one mock.

        Returns ``(abs_mag (k, F), smooth_abs_flux (F,))`` where the smooth
        term is ``sum 10**(-0.4 M)`` of the unresolved stars per arcsec^2 (to
        be scaled by distance, extinction, zero point and pixel area by the
        caller) and ``k ~ Poisson`` stars over ``area_arcsec2``.
        """
        if not np.isfinite(surface_brightness):
            raise GcsbiValueError(f"background surface brightness must be finite, got {surface_brightness}")
        ext = np.asarray(extinction_mag, dtype=np.float64)
        # stars per arcsec^2 so that the observed reference-band SB equals mu
        app_ref = 10.0 ** (-0.4 * (distance_modulus + ext[self.reference])) * self.mean_ref_flux
        density = 10.0 ** (-0.4 * surface_brightness) / app_ref
        m_lim = resolved_mag_limit - distance_modulus - ext[self.reference]
        k = int(np.searchsorted(self.pool[:, self.reference], m_lim, side="left"))
        n_pool = self.pool.shape[0]
        lam = density * area_arcsec2 * k / n_pool
        if lam > max_stars:
            raise GcsbiValueError(
                f"field background would need {lam:.3g} resolved stars; raise resolved_mag_limit brightness "
                "or lower the surface brightness"
            )
        n = int(rng.poisson(lam)) if k > 0 else 0
        mags = self.pool[rng.integers(0, k, n)] if n > 0 else np.empty((0, len(self.filters)))
        smooth = density * self.faint_flux[k]
        return mags, smooth


def _load_cutout(path: str | Path, n_bands: int) -> np.ndarray:
    p = Path(path).expanduser()
    if not p.is_file():
        raise GcsbiFileError(f"background cutout not found: {p}")
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            from astropy.io import fits

            with fits.open(p) as hdul:
                planes = [np.asarray(h.data) for h in hdul if getattr(h, "data", None) is not None]
            if len(planes) == 1:
                arr = planes[0]
            else:
                arr = np.stack([pl for pl in planes if pl.ndim == 2])
    except (OSError, ValueError) as exc:
        raise GcsbiFileError(f"cannot read background cutout {p}: {exc}") from exc
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2 and n_bands == 1:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != n_bands:
        raise GcsbiFileError(f"background cutout {p} must have shape ({n_bands}, H, W), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GcsbiFileError(f"background cutout {p} has NaN/inf pixels")
    return arr


@dataclass(frozen=True, eq=False)
class BackgroundBank:
    """In-memory bank of (F, H', W') cutouts in e-, sampled with random rotation/flip/crop."""

    cutouts: tuple[np.ndarray, ...]
    scale: float = 1.0

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], *, n_bands: int, scale: float = 1.0) -> BackgroundBank:
        if not paths:
            raise GcsbiValueError("background bank needs at least one cutout")
        return cls.from_arrays([_load_cutout(p, n_bands) for p in paths], scale=scale)

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], *, scale: float = 1.0) -> BackgroundBank:
        cut = []
        for a in arrays:
            a = np.array(a, dtype=np.float32)
            if a.ndim != 3 or not np.all(np.isfinite(a)):
                raise GcsbiValueError("bank cutouts must be finite (F, H, W) arrays")
            a.flags.writeable = False
            cut.append(a)
        if not cut:
            raise GcsbiValueError("background bank needs at least one cutout")
        if len({c.shape[0] for c in cut}) != 1:
            raise GcsbiValueError("all bank cutouts must have the same number of bands")
        if not (np.isfinite(scale) and scale >= 0):
            raise GcsbiValueError(f"bank scale must be >= 0, got {scale}")
        return cls(cutouts=tuple(cut), scale=float(scale))

    def sample(self, rng: np.random.Generator, *, shape: tuple[int, int]) -> np.ndarray:
        """A random (F, H, W) float32 patch: random cutout, rot90 k in 0..3, flip, crop."""
        h, w = shape
        c = self.cutouts[int(rng.integers(0, len(self.cutouts)))]
        k = int(rng.integers(0, 4))
        flip = bool(rng.integers(0, 2))
        c = np.rot90(c, k=k, axes=(1, 2))
        if flip:
            c = c[:, :, ::-1]
        hh, ww = c.shape[1], c.shape[2]
        if hh < h or ww < w:
            raise GcsbiValueError(f"bank cutout {c.shape[1:]} (after rotation) smaller than the stamp {shape}")
        y0 = int(rng.integers(0, hh - h + 1))
        x0 = int(rng.integers(0, ww - w + 1))
        out = np.array(c[:, y0 : y0 + h, x0 : x0 + w], dtype=np.float32)
        if self.scale != 1.0:
            out *= self.scale
        return out
