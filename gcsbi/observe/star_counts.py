"""Unresolved starlight on the pixel grid: Poisson star counts per pixel with exact mean and variance.

Given :class:`gcsbi.clusters.smooth_light.UnresolvedLight` (expected stars per pc^2 of each
luminosity group vs projected radius), :func:`unresolved_pixels` computes for every pixel of
the padded render grid the expected number ``lam[p, g]`` of stars of each group (radial
profile at the pixel's elliptical radius, times the pixel's area; the central 16x16 pixels
are averaged over 5x5 sub-pixels, where the profile curves within a pixel) and draws:

* for the groups that carry the surface-brightness fluctuation (those holding >= 1% of the
  flux variance ``sum n <f^2>`` in some band) a Poisson number of stars ``N[p, g]``; the
  remaining faint, numerous groups keep their expected number;
* the flux spread *within* a drawn group (``<f^2> - <f>^2``) as one Gaussian term per pixel
  shared by all bands (clipped at zero flux, which the narrow groups make negligible);
* the light of the groups kept at their expected counts as one pooled pseudo-group per pixel: a
  Poisson number (mean ``m^2/v`` summed over bands) of pseudo-stars of flux ``m v / m^2`` per
  band: unbiased, positive, correlated across bands like real stars; its variance is exact for
  the pooled bands and within the colour spread of these faint groups per band (they hold < 1%
  of the variance each).

So each pixel's flux has mean ``sum_g lam <f>_g`` and variance ``sum_g lam <f^2>_g`` in every
band, as for stars sampled one by one. Stars inside a pixel sit at random sub-pixel positions;
for an undersampled PSF that matters for the image variance, so the renderer deposits each
pixel's flux with the phase-averaged PSF plus a zero-mean term at one random phase with
amplitude ``sqrt(sum L_i^2)`` (:meth:`gcsbi.observe.render.Renderer.render`, ``grid=``), which
gives each star's share of the variance its phase-averaged value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GcsbiValueError
from .instrument import ARCSEC_PER_PC_AT_1KPC

__all__ = ["UnresolvedPixels", "unresolved_pixels"]

_SUB = 5  # sub-pixels per axis in the central box
_BOX = 8  # half-size (pixels) of the central box averaged over sub-pixels
_VAR_FRACTION = 1e-2  # groups below this share of the flux variance keep their expected counts


@dataclass(frozen=True, eq=False)
class UnresolvedPixels:
    """Unresolved light on the padded grid (rows/cols ``-pad .. H/W + pad - 1`` of the stamp).

    Attributes:
        flux: (F, Hp, Wp) e- per pixel (drawn).
        amplitude: (F, Hp, Wp) sqrt(sum of squared star fluxes) in e-, for the sub-pixel phase term.
        mass: (Hp, Wp) Msun per pixel (drawn star counts times mean masses).
        phase: (Hp, Wp) random sub-pixel phase of each pixel (index into the renderer's phase table).
        pad: padding in pixels on every side.
    """

    flux: np.ndarray
    amplitude: np.ndarray
    mass: np.ndarray
    phase: np.ndarray
    pad: int


def _radii_pc(shape: tuple[int, int], pad: int, *, pixel_scale: float, distance_kpc: float, ellipticity: float,
              position_angle_deg: float, sub: int = 1, box: int | None = None, half: bool = False) -> np.ndarray:
    """Elliptical radius (pc) of the source-plane position of every (sub-)pixel centre of the padded grid.

    ``half``: only the first half of the rows (the rest is their point reflection through the centre).
    """
    h, w = shape
    if box is None:
        ys = np.arange(-pad, h + pad, dtype=float)
        if half:
            ys = ys[: ys.size // 2]
        xs = np.arange(-pad, w + pad, dtype=float)
    else:  # sub-pixels of the central box, pixel-major: (2 box, sub, 2 box, sub) flattened per axis
        off = (np.arange(sub) + 0.5) / sub - 0.5
        ys = (np.round((h - 1) / 2.0) + np.arange(-box, box)[:, None] + off[None, :]).ravel()
        xs = (np.round((w - 1) / 2.0) + np.arange(-box, box)[:, None] + off[None, :]).ravel()
    sx = (xs - (w - 1) / 2.0) * pixel_scale
    sy = (ys - (h - 1) / 2.0) * pixel_scale
    t = np.deg2rad(position_angle_deg)
    c, sn = np.cos(t), np.sin(t)
    q = np.sqrt(1.0 - ellipticity)
    s = ARCSEC_PER_PC_AT_1KPC / distance_kpc
    # inverse of instrument.project_positions: rotate back, then undo the (area-preserving) stretch
    u = (sx[None, :] * c + sy[:, None] * sn) / (s * q)
    v = (-sx[None, :] * sn + sy[:, None] * c) * q / s
    return np.hypot(u, v)


def _profile(radius: np.ndarray, table: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Columns of ``table`` (R, C) tabulated at log-spaced ``radius``, at radii ``r`` -> (r.size, C).

    Log-linear interpolation; constant inside the first radius, zero beyond the last.
    """
    step = np.log(radius[1] / radius[0])
    rr = r.ravel()
    f = np.log(np.maximum(rr, radius[0]) / radius[0]) / step
    i = np.minimum(f.astype(np.intp), radius.size - 1)
    wgt = (f - i)[:, None]
    out = table[i]
    out += wgt * (table[np.minimum(i + 1, radius.size - 1)] - out)
    out[rr > radius[-1]] = 0.0
    return out


def unresolved_pixels(
    light,
    *,
    shape: tuple[int, int],
    pad: int,
    pixel_scale_arcsec: float,
    distance_kpc: float,
    counts_per_flux: np.ndarray,
    rng: np.random.Generator,
    phases: int = 64,
    ellipticity: float = 0.0,
    position_angle_deg: float = 0.0,
) -> UnresolvedPixels:
    """Draw the unresolved light of one cluster on the padded pixel grid (module docstring).

    ``counts_per_flux`` (F,) converts a star's absolute flux 10^(-0.4 M) into e- in each band
    (distance, extinction, zero point, exposure); ``phases`` is the renderer's phase-table size
    per axis (:attr:`gcsbi.observe.render.Renderer.phases`).
    """
    k = np.asarray(counts_per_flux, dtype=np.float64)
    if k.shape != (light.flux.shape[1],) or not np.all(np.isfinite(k)):
        raise GcsbiValueError(f"counts_per_flux must be {light.flux.shape[1]} finite values")
    h, w = shape
    geo = dict(pixel_scale=pixel_scale_arcsec, distance_kpc=distance_kpc, ellipticity=ellipticity,
               position_angle_deg=position_angle_deg)
    area = (pixel_scale_arcsec * distance_kpc / ARCSEC_PER_PC_AT_1KPC) ** 2  # pc^2 per pixel
    hp, wp = h + 2 * pad, w + 2 * pad
    flux, flux2 = light.flux * k[None, :], light.flux2 * k[None, :] ** 2  # e- per star, (G, F)
    var_g = light.n[:, None] * flux2
    drawn = np.any(var_g >= _VAR_FRACTION * var_g.sum(axis=0, keepdims=True), axis=1)
    # one radial table: densities of the drawn groups, then the summed mean flux, squared flux and
    # mass of the groups kept at their expected counts (stars per pc^2 times per-star values)
    dens = light.density
    rest = dens[:, ~drawn]
    table = np.concatenate([dens[:, drawn], rest @ flux[~drawn], rest @ flux2[~drawn],
                            rest @ light.mean_mass[~drawn, None]], axis=1) * area
    nd, nf = int(drawn.sum()), flux.shape[1]
    radii = _radii_pc(shape, pad, half=hp % 2 == 0, **geo)
    cols = _profile(light.radius_pc, table, radii)  # (Hp*Wp, C), or its top half
    if radii.shape[0] < hp:  # the radii are point-symmetric about the stamp centre: mirror the top half
        top = cols.reshape(radii.shape[0], wp, -1)
        cols = np.concatenate([top, top[::-1, ::-1]], axis=0).reshape(hp * wp, -1)
    # the central box, averaged over sub-pixels
    box = min(_BOX, (h + 1) // 2, (w + 1) // 2)
    rsub = _radii_pc(shape, pad, sub=_SUB, box=box, **geo)
    sub = _profile(light.radius_pc, table, rsub).reshape(2 * box, _SUB, 2 * box, _SUB, -1).mean(axis=(1, 3))
    y0 = int(np.round((h - 1) / 2.0)) - box + pad
    x0 = int(np.round((w - 1) / 2.0)) - box + pad
    cols = cols.reshape(hp, wp, -1)
    cols[y0:y0 + 2 * box, x0:x0 + 2 * box] = sub
    cols = cols.reshape(hp * wp, -1)

    counts = rng.poisson(cols[:, :nd]).astype(np.float64)
    spread = np.clip(flux2 - flux**2, 0.0, None)[drawn]
    z = rng.standard_normal(hp * wp)
    out = np.clip(counts @ flux[drawn] + np.sqrt(counts @ spread) * z[:, None], 0.0, None)
    # the groups kept at their expected counts, pooled into one pseudo-group per pixel: a Poisson
    # number of pseudo-stars with the pooled effective count m^2 / v, each carrying v / m per band
    m_rest, v_rest = cols[:, nd:nd + nf], cols[:, nd + nf:nd + 2 * nf]
    m2, v2 = m_rest[:, 0] ** 2, v_rest[:, 0].copy()
    for j in range(1, nf):
        m2 += m_rest[:, j] ** 2
        v2 += v_rest[:, j]
    ok = (m2 > 0) & (v2 > 0)
    lam_eff = np.where(ok, m2 / np.where(ok, v2, 1.0), 0.0)
    n_eff = rng.poisson(lam_eff)
    out += m_rest * np.where(ok, n_eff / np.where(ok, lam_eff, 1.0), 1.0)[:, None]
    amp = np.sqrt(counts @ flux2[drawn] + v_rest)
    mass = counts @ light.mean_mass[drawn] + cols[:, -1]
    phase = rng.integers(0, int(phases) ** 2, size=(hp, wp))
    return UnresolvedPixels(flux=out.T.reshape(-1, hp, wp), amplitude=amp.T.reshape(-1, hp, wp),
                            mass=mass.reshape(hp, wp), phase=phase, pad=int(pad))
