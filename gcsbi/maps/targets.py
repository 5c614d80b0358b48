"""What the map heads learn, computed from a simulator's truth maps.

Per pixel (on the simulator's H x W grid):

* ``log_mass``: log10(mass per pixel + ``MASS_FLOOR``) in Msun (the projected stellar mass,
  remnants included, that the simulator drew; ``mass_map`` truth);
* ``clean``: asinh(clean_b / s_b) per band b, the noiseless cluster light (``clean`` truth,
  e-) without field stars, smooth galaxy light, sky or noise; ``s_b`` is the band's
  sky + read noise per pixel, so one unit is about the noise of an empty pixel.

Per cluster, the derived quantities an astronomer quotes (:data:`SUMMARY_NAMES`), all inside
the field of view and in circular apertures about the stamp centre (where the simulator puts
the cluster): the half-light radius R_h of the clean image in the reddest band, the mass and
mass-to-light ratio inside 0.5, 1 and 2 R_h and in the whole field, and the ratio of the
mass half-radius to R_h (about 1 without mass segregation; the seed's "how mass-segregated
the clusters are").
Luminosities are in solar units of that band (the Sun from :func:`gcsbi.stars.filters.solar_absolute_magnitudes`),
corrected for distance and extinction with the cluster's own parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["MASS_FLOOR", "APERTURES", "SUMMARY_NAMES", "SUMMARY_UNITS", "Photometry", "log_mass", "clean_to_asinh",
           "asinh_to_clean", "radial_grid", "enclosed", "half_radius", "summaries"]

#: Msun per pixel added before the log (a pixel with no star reads log10(0.01) = -2).
MASS_FLOOR = 1e-2
#: Aperture radii of the enclosed-mass and M/L profiles, in units of the half-light radius.
APERTURES = (0.5, 1.0, 2.0)
SUMMARY_NAMES = ("log10_mass_fov", "log10_mass_0.5rh", "log10_mass_1rh", "log10_mass_2rh",
                 "log10_ml_fov", "log10_ml_0.5rh", "log10_ml_1rh", "log10_ml_2rh",
                 "log10_rh_light_arcsec", "log10_rh_mass_over_light")
SUMMARY_UNITS = {"log10_mass": "dex(Msun)", "log10_ml": "dex(Msun/Lsun)", "log10_rh_light_arcsec": "dex(arcsec)",
                 "log10_rh_mass_over_light": "dex"}


@dataclass(frozen=True)
class Photometry:
    """What turns clean counts (e-) of one band into solar luminosities, and noise scales.

    ``zeropoint`` (Vega mag for 1 e-/s), ``exposure_s``, ``extinction_coeff`` (A_band / E(B-V)),
    ``sun_abs_mag`` (the Sun in that band), ``noise_scale`` (F,) sky + read noise per pixel (e-)
    of every band, ``band`` the index of the light band, ``pixel_scale_arcsec``, ``bands`` the filter names.
    """

    zeropoint: float
    exposure_s: float
    extinction_coeff: float
    sun_abs_mag: float
    noise_scale: tuple[float, ...]
    band: int
    pixel_scale_arcsec: float
    bands: tuple[str, ...] = ()

    @classmethod
    def from_simulator(cls, sim) -> Photometry:
        """The photometry of a :class:`gcsbi.simulator.ClusterSimulator`'s reddest band."""
        from ..stars.filters import solar_absolute_magnitudes

        model = sim.model
        filters = list(model.filters)
        b = len(filters) - 1
        noise = np.sqrt(np.asarray(model.sky_e, float) + np.asarray(model.read_noise_e, float) ** 2)
        return cls(zeropoint=float(model.zeropoints[b]), exposure_s=float(model.exposure_s[b]),
                   extinction_coeff=float(model.extinction_coeff[b]),
                   sun_abs_mag=float(solar_absolute_magnitudes([filters[b]])[filters[b]]),
                   noise_scale=tuple(float(v) for v in np.maximum(noise, 1.0)), band=b,
                   pixel_scale_arcsec=float(sim.sim_spec.instrument.pixel_scale_arcsec), bands=tuple(filters))

    def luminosity(self, counts: np.ndarray, *, distance_kpc: np.ndarray, ebv: np.ndarray) -> np.ndarray:
        """Solar luminosities in the band of ``counts`` (e-, any shape (B, ...)) for each cluster's distance and E(B-V)."""
        d = np.asarray(distance_kpc, float).reshape((-1,) + (1,) * (np.ndim(counts) - 1))
        e = np.asarray(ebv, float).reshape(d.shape)
        mu = 5.0 * np.log10(d * 1e3) - 5.0
        # m = zp - 2.5 log10(counts / t); M = m - mu - A; L / Lsun = 10^(-0.4 (M - Msun))
        offset = self.zeropoint - mu - self.extinction_coeff * e - self.sun_abs_mag
        return np.asarray(counts, float) / self.exposure_s * 10 ** (-0.4 * offset)


def log_mass(mass_map: np.ndarray) -> np.ndarray:
    """log10(mass per pixel + MASS_FLOOR)."""
    return np.log10(np.clip(np.asarray(mass_map, np.float64), 0.0, None) + MASS_FLOOR).astype(np.float32)


def clean_to_asinh(clean: np.ndarray, scale) -> np.ndarray:
    """asinh(clean / s_b) of (B, F, H, W) or (F, H, W) counts, ``scale`` (F,)."""
    s = np.asarray(scale, np.float64).reshape(-1, 1, 1)
    return np.arcsinh(np.asarray(clean, np.float64) / s).astype(np.float32)


def asinh_to_clean(t: np.ndarray, scale) -> np.ndarray:
    """The inverse of :func:`clean_to_asinh` (e-)."""
    s = np.asarray(scale, np.float64).reshape(-1, 1, 1)
    return (np.sinh(np.asarray(t, np.float64)) * s).astype(np.float32)


def radial_grid(shape: tuple[int, int]) -> np.ndarray:
    """Distance (pixels) of every pixel centre from the stamp centre ((W-1)/2, (H-1)/2)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(xx - (w - 1) / 2.0, yy - (h - 1) / 2.0)


def enclosed(maps: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Sums of (B, H, W) maps inside circles of ``radii`` (B, K) pixels -> (B, K)."""
    maps = np.asarray(maps, np.float64)
    r = radial_grid(maps.shape[-2:]).ravel()
    order = np.argsort(r, kind="stable")
    rs = r[order]
    cum = np.cumsum(maps.reshape(len(maps), -1)[:, order], axis=1)
    radii = np.asarray(radii, np.float64)
    idx = np.searchsorted(rs, radii, side="right")  # pixels with centre inside the circle
    out = np.zeros(radii.shape)
    for i in range(len(maps)):
        k = idx[i]
        out[i] = np.where(k > 0, cum[i, np.clip(k - 1, 0, None)], 0.0)
    return out


def half_radius(maps: np.ndarray) -> np.ndarray:
    """Radius (pixels) holding half of each (B, H, W) map's total, interpolated between pixel rings."""
    maps = np.clip(np.asarray(maps, np.float64), 0.0, None)
    r = radial_grid(maps.shape[-2:]).ravel()
    order = np.argsort(r, kind="stable")
    rs = r[order]
    cum = np.cumsum(maps.reshape(len(maps), -1)[:, order], axis=1)
    # cumulative sums at the distinct ring radii, then linear interpolation to half the total
    uniq, last = np.unique(rs[::-1], return_index=True)
    ring_end = len(rs) - 1 - last
    grid_r = np.concatenate([[0.0], uniq])
    out = np.full(len(maps), np.nan)
    for i in range(len(maps)):
        total = cum[i, -1]
        if total > 0:
            out[i] = float(np.interp(0.5 * total, np.concatenate([[0.0], cum[i, ring_end]]), grid_r))
    return out


def summaries(mass_map: np.ndarray, clean: np.ndarray, *, distance_kpc: np.ndarray, ebv: np.ndarray,
              photometry: Photometry) -> np.ndarray:
    """(B, len(SUMMARY_NAMES)) derived quantities of (B, H, W) mass maps and (B, F, H, W) clean images."""
    mass_map = np.asarray(mass_map, np.float64)
    clean = np.asarray(clean, np.float64)
    if mass_map.ndim != 3 or clean.ndim != 4 or clean.shape[0] != mass_map.shape[0] \
            or clean.shape[-2:] != mass_map.shape[-2:]:
        raise GcsbiValueError(f"need mass maps (B, H, W) and clean images (B, F, H, W) of one grid, got "
                              f"{mass_map.shape} and {clean.shape}")
    light = photometry.luminosity(clean[:, photometry.band], distance_kpc=distance_kpc, ebv=ebv)
    rh = half_radius(light)
    rh_mass = half_radius(mass_map)
    radii = rh[:, None] * np.asarray(APERTURES)[None]
    m_in = enclosed(mass_map, radii)
    l_in = enclosed(light, radii)
    m_tot, l_tot = mass_map.sum(axis=(1, 2)), light.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = [np.log10(m_tot), *np.log10(m_in).T, np.log10(m_tot / l_tot), *np.log10(m_in / l_in).T,
                np.log10(rh * photometry.pixel_scale_arcsec), np.log10(rh_mass / rh)]
    return np.stack(cols, axis=1).astype(np.float32)
