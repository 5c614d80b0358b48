"""Point-spread functions: GalSim optical models, user PSF images, and the
low-rank sub-pixel kernel used by the fast renderer.

Two ways to get a PSF profile (a ``galsim.GSObject`` in arcsec):

* :func:`optical_psf` -- a diffraction model of the telescope at the band's
  pivot wavelength: ``galsim.OpticalPSF`` with a circular obscured pupil and
  struts (HST), or a segmented hexagonal pupil image (JWST, see
  :func:`jwst_pupil_image`), optionally convolved with a Gaussian (jitter /
  charge diffusion).
* :func:`file_psf` -- a PSF image from a FITS or ``.npy`` file at any sampling
  (TinyTim, empirical ePSF grids...), wrapped as ``galsim.InterpolatedImage``.

``pixel_convolved`` tells whether the profile already includes the detector
pixel response (true for TinyTim/ePSF images, false for optical models); the
renderer needs the *pixel-convolved* PSF, see :func:`pixel_response_profile`.

:class:`SubpixelKernel` is the heart of the fast renderer. The pixel-convolved
PSF ``P`` sampled on the native grid for a star at sub-pixel phase
``delta in [-1/2, 1/2]^2`` is the stamp ``S_delta[n] = P(n - delta)``. Stamps
of a (Q+1)x(Q+1) grid of phases are stacked and factorised by SVD,
``S_delta[n] ~= sum_l a_l(delta) B_l[n]``; ``a_l`` is interpolated bilinearly
between phases. Rendering then costs L deposits + L FFTs instead of one
drawImage per star (see :mod:`gcsbi.observe.render`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import galsim
import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import GcsbiFileError, GcsbiValueError

__all__ = [
    "optical_psf",
    "file_psf",
    "load_psf_image",
    "jwst_pupil_image",
    "exact_profile",
    "SubpixelKernel",
    "build_subpixel_kernel",
]

_RAD_TO_ARCSEC = 180.0 / np.pi * 3600.0


@functools.lru_cache(maxsize=8)
def jwst_pupil_image(npix: int = 512, diameter_m: float = 6.603, gap_m: float = 0.007) -> np.ndarray:
    """Approximate JWST entrance pupil: 18 hexagonal segments, secondary obscuration, 3 struts.

    Segments are flat-to-flat 1.32 m hexagons (pointy side up, as on JWST) on a
    hexagonal lattice with ``gap_m`` gaps; the central segment is absent and
    the secondary mirror (0.74 m) and its three 0.1 m struts block light.
    Returns a float array (npix, npix) on a square of side ``diameter_m``
    (pupil scale ``diameter_m / npix`` m/pixel). A didactic approximation,
    not the WebbPSF pupil.
    """
    scale = diameter_m / npix
    c = (np.arange(npix) - (npix - 1) / 2) * scale
    x, y = np.meshgrid(c, c)
    flat = 1.32  # flat-to-flat of one segment (m)
    pitch = flat + gap_m
    # axial lattice of hexagon centres: rings 1 and 2 around the (missing) centre
    centres = []
    for q in range(-2, 3):
        for r in range(-2, 3):
            s = -q - r
            ring = max(abs(q), abs(r), abs(s))
            if ring in (1, 2):
                cx = pitch * (q + r / 2.0)
                cy = pitch * (r * np.sqrt(3) / 2.0)
                centres.append((cx, cy))
    pupil = np.zeros((npix, npix), dtype=bool)
    half = flat / 2.0
    for cx, cy in centres:  # flat sides left/right -> pointy top/bottom
        dx, dy = np.abs(x - cx), np.abs(y - cy)
        inside = (dx <= half) & (dx * 0.5 + dy * np.sqrt(3) / 2 <= half)
        pupil |= inside
    rr = np.hypot(x, y)
    pupil &= rr > 0.74 / 2
    for ang in (90.0, 210.0, 330.0):  # three struts of the secondary support
        a = np.deg2rad(ang)
        along = x * np.cos(a) + y * np.sin(a)
        across = np.abs(-x * np.sin(a) + y * np.cos(a))
        pupil &= ~((along > 0) & (across < 0.05))
    return pupil.astype(np.float64)


def optical_psf(
    *,
    wavelength_nm: float,
    diameter_m: float,
    obscuration: float = 0.0,
    nstruts: int = 0,
    strut_thick: float = 0.05,
    strut_angle_deg: float = 0.0,
    pupil: str = "circular",
    gsparams: galsim.GSParams | None = None,
) -> galsim.GSObject:
    """Diffraction-limited PSF (arcsec units) at ``wavelength_nm``; not pixel-convolved.

    ``pupil="circular"``: ``galsim.OpticalPSF`` with ``obscuration`` (linear
    fraction) and ``nstruts`` struts of fractional thickness ``strut_thick``
    at ``strut_angle_deg`` (HST: 0.33, 4 struts at 45 deg).
    ``pupil="jwst_hex"``: the segmented pupil of :func:`jwst_pupil_image`.
    Jitter / charge diffusion (a Gaussian) is added by :func:`exact_profile`
    and :func:`build_subpixel_kernel`, not here.
    """
    if not (wavelength_nm > 0 and diameter_m > 0):
        raise GcsbiValueError("wavelength_nm and diameter_m must be positive")
    lam_over_diam = wavelength_nm * 1e-9 / diameter_m * _RAD_TO_ARCSEC
    if pupil == "circular":
        prof = galsim.OpticalPSF(
            lam_over_diam=lam_over_diam,
            obscuration=obscuration,
            nstruts=int(nstruts),
            strut_thick=strut_thick,
            strut_angle=strut_angle_deg * galsim.degrees,
            gsparams=gsparams,
        )
    elif pupil == "jwst_hex":
        npix = 512
        im = galsim.Image(jwst_pupil_image(npix, diameter_m), scale=diameter_m / npix)
        prof = galsim.OpticalPSF(
            lam=wavelength_nm,
            diam=diameter_m,
            pupil_plane_im=im,
            pupil_plane_scale=diameter_m / npix,
            pad_factor=1.5,
            gsparams=gsparams,
        )
    else:
        raise GcsbiValueError(f"unknown pupil {pupil!r}; allowed: 'circular', 'jwst_hex'")
    return prof


def load_psf_image(path: str | Path, *, index: int | None = None) -> tuple[np.ndarray, float | None]:
    """Read a PSF image from FITS (first image HDU) or ``.npy``.

    Returns ``(image, pixel_scale)``: a float64 (ny, nx) image with unit sum
    and the FITS header's ``PIXSCALE`` (arcsec) when present, else ``None``.
    A 3D array (a grid of PSFs, e.g. the STScI empirical WFC3 PSFs with one
    PSF per detector position) is reduced with ``index`` (``None`` -> mean).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise GcsbiFileError(f"PSF file not found: {p}")
    scale = None
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            from astropy.io import fits

            arr = None
            with fits.open(p) as hdul:
                for h in hdul:
                    if getattr(h, "data", None) is not None and h.data.ndim >= 2:
                        arr = np.array(h.data)
                        if "PIXSCALE" in h.header:
                            scale = float(h.header["PIXSCALE"])
                        break
            if arr is None:
                raise GcsbiFileError(f"no image data in {p}")
    except (OSError, ValueError) as exc:
        raise GcsbiFileError(f"cannot read PSF image {p}: {exc}") from exc
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 3:
        if index is None:
            arr = arr.mean(axis=0)
        elif not -arr.shape[0] <= index < arr.shape[0]:
            raise GcsbiValueError(f"PSF index {index} out of range for {arr.shape[0]} PSFs in {p}")
        else:
            arr = arr[index]
    if arr.ndim != 2 or min(arr.shape) < 3:
        raise GcsbiFileError(f"PSF image in {p} must be 2D (or a 3D stack), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GcsbiFileError(f"PSF image in {p} has NaN/inf values")
    total = arr.sum()
    if not total > 0:
        raise GcsbiFileError(f"PSF image in {p} has non-positive total {total}")
    return arr / total, scale


def file_psf(
    image: np.ndarray, *, pixel_scale_arcsec: float, x_interpolant: str = "lanczos5"
) -> galsim.InterpolatedImage:
    """Wrap a (normalised) PSF image sampled at ``pixel_scale_arcsec`` as a unit-flux ``InterpolatedImage``."""
    if not pixel_scale_arcsec > 0:
        raise GcsbiValueError("PSF pixel_scale_arcsec must be positive")
    im = galsim.Image(np.ascontiguousarray(image, dtype=np.float64), scale=pixel_scale_arcsec)
    return galsim.InterpolatedImage(im, x_interpolant=x_interpolant, flux=1.0, normalization="flux")


def exact_profile(psf: galsim.GSObject, *, jitter_sigma_arcsec: float = 0.0) -> galsim.GSObject:
    """The full PSF profile (``psf`` convolved with the jitter Gaussian), for exact GalSim drawing.

    Draw it with ``method='auto'`` (adds the pixel) for an optical model and
    ``method='no_pixel'`` for a pixel-convolved PSF image.
    """
    if jitter_sigma_arcsec > 0:
        return galsim.Convolve(psf, galsim.Gaussian(sigma=jitter_sigma_arcsec))
    return psf


@dataclass(frozen=True, eq=False)
class SubpixelKernel:
    """Low-rank representation of the pixel-convolved PSF at every sub-pixel phase.

    Attributes:
        basis: (L, 2r+1, 2r+1) float64 basis stamps ``B_l`` (centre at [r, r]).
        coeff: (L, Q+1, Q+1) float64 ``a_l`` at phases ``delta = i/Q - 1/2`` (axis 1: y, axis 2: x).
        radius: r, kernel half-size in native pixels.
        phases: Q (even), number of phase steps per pixel.
        max_rel_error: max |stamp - low-rank| / peak over the phase grid.
        flux_in_stamp: mean stamp sum (flux inside the truncated kernel, 1 = all).
    """

    basis: np.ndarray
    coeff: np.ndarray
    radius: int
    phases: int
    max_rel_error: float
    flux_in_stamp: float

    @property
    def rank(self) -> int:
        return int(self.basis.shape[0])


def _box_convolve(fine: np.ndarray, q: int) -> np.ndarray:
    """Convolve a fine-grid image with a native pixel (width q fine samples), trapezoid rule, separable."""
    w = np.ones(q + 1)
    w[0] = w[-1] = 0.5
    w /= q
    out = np.zeros_like(fine)
    h = q // 2
    tmp = np.zeros_like(fine)
    for i, wi in enumerate(w):  # along x
        s = i - h
        if s >= 0:
            tmp[:, : fine.shape[1] - s] += wi * fine[:, s:]
        else:
            tmp[:, -s:] += wi * fine[:, : fine.shape[1] + s]
    for i, wi in enumerate(w):  # along y
        s = i - h
        if s >= 0:
            out[: fine.shape[0] - s] += wi * tmp[s:]
        else:
            out[-s:] += wi * tmp[: fine.shape[0] + s]
    return out


def build_subpixel_kernel(
    psf: galsim.GSObject,
    *,
    pixel_scale_arcsec: float,
    pixel_convolved: bool,
    radius: int,
    jitter_sigma_arcsec: float = 0.0,
    phases: int = 16,
    tol: float = 3e-3,
    max_rank: int = 24,
) -> SubpixelKernel:
    """Sample the pixel-convolved ``psf`` at ``phases`` sub-pixel steps and factorise by SVD.

    The profile is point-sampled (``method='no_pixel'``) on a grid ``phases``
    times finer than the native pixels, convolved with the jitter Gaussian
    (numerically, on the fine grid), then (unless ``pixel_convolved``)
    integrated over the native pixel numerically (trapezoid rule, exact to
    O((1/phases)^2)). The rank L is the smallest with max error <= ``tol`` x
    peak over all phases (capped at ``max_rank``).
    """
    if phases < 2 or phases % 2:
        raise GcsbiValueError(f"phases must be an even integer >= 2, got {phases}")
    if radius < 1:
        raise GcsbiValueError(f"kernel radius must be >= 1 pixel, got {radius}")
    q = int(phases)
    nfine = q * (2 * radius + 2) + 1  # odd: the profile centre is the central fine pixel
    fine = psf.drawImage(
        nx=nfine, ny=nfine, scale=pixel_scale_arcsec / q, method="no_pixel", dtype=np.float64
    ).array * float(q * q)  # surface brightness x native pixel area
    if jitter_sigma_arcsec > 0:
        from scipy.ndimage import gaussian_filter

        fine = gaussian_filter(fine, jitter_sigma_arcsec / (pixel_scale_arcsec / q), mode="constant", truncate=5.0)
    if not pixel_convolved:
        fine = _box_convolve(fine, q)
    c = nfine // 2
    nst = 2 * radius + 1
    stamps = np.empty(((q + 1) * (q + 1), nst * nst))
    n = np.arange(-radius, radius + 1)
    k = 0
    for iy in range(q + 1):
        # S[n] = P(n - delta), delta = i/q - 1/2 -> fine index c + q*n - i + q/2
        rows = c + q * n - iy + q // 2
        for ix in range(q + 1):
            cols = c + q * n - ix + q // 2
            stamps[k] = fine[np.ix_(rows, cols)].ravel()
            k += 1
    peak = float(np.abs(stamps).max())
    if not peak > 0:
        raise GcsbiValueError("PSF profile is zero on the sampling grid")
    # SVD through the small Gram matrix (phases x phases): A = U S V^T, A A^T = U S^2 U^T.
    # One BLAS thread: multi-threaded BLAS sums in a thread-count-dependent order, and the
    # kernels must be bit-identical in every process (same seed, same bytes in workers).
    with threadpool_limits(limits=1):
        evals, evecs = np.linalg.eigh(stamps @ stamps.T)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    resid = stamps.copy()
    err = 1.0
    rank = 0
    vt = []
    for rank in range(1, min(max_rank, len(evals)) + 1):
        u = evecs[:, rank - 1]
        with threadpool_limits(limits=1):
            v = u @ stamps  # = s_l v_l^T
        resid -= np.outer(u, v)
        vt.append(v)
        err = float(np.abs(resid).max()) / peak
        if err <= tol:
            break
    # coefficients a_l = u_l s_l, basis B_l = v_l (unit norm)
    v_all = np.array(vt)
    norms = np.linalg.norm(v_all, axis=1)
    norms[norms == 0] = 1.0
    basis = (v_all / norms[:, None]).reshape(rank, nst, nst)
    coeff = (evecs[:, :rank] * norms).T.reshape(rank, q + 1, q + 1)
    return SubpixelKernel(
        basis=basis,
        coeff=coeff,
        radius=int(radius),
        phases=q,
        max_rel_error=err,
        flux_in_stamp=float(stamps.sum(axis=1).mean()),
    )
