"""Aperture photometry as in the PHAT cluster catalogue (Johnson et al. 2015, ApJ 802, 127).

What the catalogue reports per cluster and band (VizieR J/ApJ/802/127, table 2): a Vega
magnitude measured in a circular aperture of radius ``Rap`` (arcsec; set per cluster from the
Andromeda Project volunteers' size measurements) after subtracting a local background, its
photometric error, an aperture correction ``mcor`` (``m_total = m_ap + mcor``) and an effective
radius ``Reff`` (arcsec).

The functions here measure the same quantities on an image of counts (e-), with these
choices (the paper's exact annulus was not available offline, so they are ours; all are
arguments):

* aperture: circle of radius ``Rap`` around the cluster centre;
* local background: the mean of the pixels in the annulus ``[1.2, 1.7] x Rap``
  (:data:`ANNULUS`), times the aperture area, is subtracted;
* error: from the noise model, ``var(F) = sum_ap var_i + N_ap^2 / N_ann^2 sum_ann var_i``, with
  ``var_i`` the expected counts (source + background + sky) plus read-noise variance;
  ``sigma_m = 2.5 / ln 10 * sigma_F / F``;
* ``Reff``: the radius enclosing half of the background-subtracted light inside ``Rap`` in
  the reference band (F475W), from the curve of growth of the *noisy* image (measured on
  the data exactly like the real catalogue; it is noisy for faint clusters, and NaN where
  the aperture flux is not positive). The catalogue's own Reff values lie in [0.09, 3.62]"; a
  catalogue row with Reff <= 0 is refused (:func:`gcsbi.catalogue.catalogues.catalogue_values`).

Pixels are counted in a circle of radius r when their centre lies within r; curves of growth
are tabulated at r_k = k * step (one pixel) and interpolated linearly in r^2 in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["ANNULUS", "ApertureResult", "radial_grid", "curves_of_growth", "interp_cog",
           "aperture_photometry", "aperture_from_cog", "half_light_radius", "pixel_counts"]

#: Inner and outer radius of the local-background annulus in units of the aperture radius.
ANNULUS: tuple[float, float] = (1.2, 1.7)
_MAG = 2.5 / np.log(10.0)


def _centre(shape: tuple[int, int], centre: tuple[float, float] | None) -> tuple[float, float]:
    h, w = shape
    return ((w - 1) / 2.0, (h - 1) / 2.0) if centre is None else (float(centre[0]), float(centre[1]))


def radial_grid(shape: tuple[int, int], pixel_scale_arcsec: float, *, step_pix: float = 1.0) -> np.ndarray:
    """Radii r_k = k * step (arcsec), k = 1..K, out to the largest circle inside the stamp."""
    h, w = shape
    k = int(np.floor((min(h, w) / 2.0) / step_pix))
    return np.arange(1, k + 1) * step_pix * float(pixel_scale_arcsec)


def curves_of_growth(images: np.ndarray, radii_arcsec: np.ndarray, pixel_scale_arcsec: float, *,
                     centre: tuple[float, float] | None = None) -> np.ndarray:
    """Cumulative sums inside circles: (..., H, W) images -> (..., K) at ``radii_arcsec``.

    ``centre`` (x, y) in pixels (default: the stamp centre ((W-1)/2, (H-1)/2)).
    """
    img = np.asarray(images, dtype=np.float64)
    if img.ndim < 2:
        raise GcsbiValueError(f"images must be (..., H, W), got shape {img.shape}")
    h, w = img.shape[-2:]
    cx, cy = _centre((h, w), centre)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - cx, yy - cy).ravel() * float(pixel_scale_arcsec)
    edges = np.asarray(radii_arcsec, dtype=np.float64)
    # bin index of each pixel: number of edges <= r (pixel inside circle k iff r < r_k)
    idx = np.searchsorted(edges, r, side="right")
    flat = img.reshape(-1, h * w)
    out = np.zeros((flat.shape[0], len(edges) + 1))
    for i in range(flat.shape[0]):
        out[i] = np.bincount(idx, weights=flat[i], minlength=len(edges) + 1)[: len(edges) + 1]
    return np.cumsum(out, axis=1)[:, : len(edges)].reshape(*img.shape[:-2], len(edges))


def pixel_counts(shape: tuple[int, int], radii_arcsec: np.ndarray, pixel_scale_arcsec: float, *,
                 centre: tuple[float, float] | None = None) -> np.ndarray:
    """Number of pixels inside each circle of :func:`curves_of_growth` (K,)."""
    return curves_of_growth(np.ones(shape), radii_arcsec, pixel_scale_arcsec, centre=centre)


def interp_cog(cog: np.ndarray, radii_arcsec: np.ndarray, r: np.ndarray | float) -> np.ndarray:
    """Curve of growth (..., K) at radius r (broadcast against ...), linear in r^2, 0 at r = 0."""
    cog = np.asarray(cog, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    shape = np.broadcast_shapes(cog.shape[:-1], r.shape)
    cog = np.broadcast_to(cog, shape + cog.shape[-1:])
    r2 = np.concatenate([[0.0], np.asarray(radii_arcsec, dtype=np.float64) ** 2])
    c = np.concatenate([np.zeros(shape + (1,)), cog], axis=-1)
    rr = np.broadcast_to(r**2, shape)
    if np.any(rr > r2[-1] * (1 + 1e-9)):
        raise GcsbiValueError(f"radius {np.sqrt(rr.max()):.3g}\" beyond the stamp (max {np.sqrt(r2[-1]):.3g}\")")
    j = np.clip(np.searchsorted(r2, rr, side="right") - 1, 0, len(r2) - 2)
    t = (rr - r2[j]) / (r2[j + 1] - r2[j])
    lo = np.take_along_axis(c, j[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(c, (j + 1)[..., None], axis=-1)[..., 0]
    return lo + t * (hi - lo)


@dataclass(frozen=True)
class ApertureResult:
    """Background-subtracted aperture flux (counts), its 1-sigma error and the background level per pixel."""

    flux: np.ndarray
    flux_err: np.ndarray
    background_per_pixel: np.ndarray
    n_aperture: np.ndarray
    n_annulus: np.ndarray


def aperture_from_cog(cog: np.ndarray, cog_var: np.ndarray | None, npix: np.ndarray, radii_arcsec: np.ndarray,
                      rap_arcsec: np.ndarray | float, annulus: Sequence[float] = ANNULUS) -> ApertureResult:
    """Aperture photometry from tabulated curves of growth (signal, variance, pixel count)."""
    a_in, a_out = (float(annulus[0]), float(annulus[1]))
    if not 1.0 <= a_in < a_out:
        raise GcsbiValueError(f"annulus must satisfy 1 <= inner < outer (x Rap), got {annulus}")
    rap = np.asarray(rap_arcsec, dtype=np.float64)
    if np.any(~np.isfinite(rap)) or np.any(rap <= 0):
        raise GcsbiValueError(f"aperture radius must be positive, got {rap_arcsec}")
    n_ap = interp_cog(npix, radii_arcsec, rap)
    n_ann = interp_cog(npix, radii_arcsec, a_out * rap) - interp_cog(npix, radii_arcsec, a_in * rap)
    f_ap = interp_cog(cog, radii_arcsec, rap)
    f_ann = interp_cog(cog, radii_arcsec, a_out * rap) - interp_cog(cog, radii_arcsec, a_in * rap)
    bkg = f_ann / n_ann
    flux = f_ap - n_ap * bkg
    if cog_var is None:
        err = np.full_like(flux, np.nan)
    else:
        v_ap = interp_cog(cog_var, radii_arcsec, rap)
        v_ann = interp_cog(cog_var, radii_arcsec, a_out * rap) - interp_cog(cog_var, radii_arcsec, a_in * rap)
        err = np.sqrt(np.clip(v_ap + (n_ap / n_ann) ** 2 * v_ann, 0.0, None))
    return ApertureResult(flux, err, bkg, n_ap, n_ann)


def aperture_photometry(image: np.ndarray, rap_arcsec: float, pixel_scale_arcsec: float, *,
                        variance: np.ndarray | None = None, centre: tuple[float, float] | None = None,
                        annulus: Sequence[float] = ANNULUS) -> ApertureResult:
    """Aperture photometry of image(s) (..., H, W) in counts with a local background annulus.

    ``variance``: per-pixel variance (same shape) for the error; ``centre`` (x, y) in pixels.
    """
    img = np.asarray(image, dtype=np.float64)
    if not np.all(np.isfinite(img)):
        raise GcsbiValueError("image contains NaN or inf; mask or inpaint it first")
    radii = radial_grid(img.shape[-2:], pixel_scale_arcsec, step_pix=0.5)
    if rap_arcsec * annulus[1] > radii[-1]:
        raise GcsbiValueError(f"aperture {rap_arcsec}\" x {annulus[1]} (background annulus) does not fit in the "
                              f"{img.shape[-1]}x{img.shape[-2]} stamp (max radius {radii[-1]:.2f}\")")
    cog = curves_of_growth(img, radii, pixel_scale_arcsec, centre=centre)
    var = None if variance is None else curves_of_growth(variance, radii, pixel_scale_arcsec, centre=centre)
    npix = pixel_counts(img.shape[-2:], radii, pixel_scale_arcsec, centre=centre)
    return aperture_from_cog(cog, var, npix, radii, rap_arcsec, annulus)


def half_light_radius(cog: np.ndarray, npix: np.ndarray, radii_arcsec: np.ndarray, rap_arcsec: np.ndarray | float,
                      annulus: Sequence[float] = ANNULUS) -> np.ndarray:
    """Radius (arcsec) enclosing half of the background-subtracted light inside ``Rap``.

    ``cog`` (..., K) of a counts image; the background per pixel comes from the annulus.
    Returns NaN where the aperture flux is not positive.
    """
    cog = np.asarray(cog, dtype=np.float64)
    rap = np.broadcast_to(np.asarray(rap_arcsec, dtype=np.float64), cog.shape[:-1])
    res = aperture_from_cog(cog, None, npix, radii_arcsec, rap, annulus)
    net = cog - res.background_per_pixel[..., None] * npix  # background-subtracted curve of growth
    half = 0.5 * res.flux
    out = np.full(cog.shape[:-1], np.nan)
    r_all = np.concatenate([[0.0], radii_arcsec])
    c_all = np.concatenate([np.zeros(cog.shape[:-1] + (1,)), net], axis=-1)
    for idx in np.ndindex(cog.shape[:-1]):
        if not res.flux[idx] > 0:
            continue
        inside = r_all <= rap[idx]
        c = c_all[idx][inside]
        r = r_all[inside]
        k = np.flatnonzero(c >= half[idx])
        if len(k) == 0:
            out[idx] = rap[idx]
            continue
        j = int(k[0])
        if j == 0:
            out[idx] = 0.0
            continue
        # linear in r^2 between tabulated radii (the curve of growth is ~linear in area)
        t = (half[idx] - c[j - 1]) / (c[j] - c[j - 1])
        out[idx] = np.sqrt(r[j - 1] ** 2 + t * (r[j] ** 2 - r[j - 1] ** 2))
    return out
