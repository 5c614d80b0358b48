"""Fast multi-band rendering of star lists with sub-pixel accuracy.

Pixel convention (all of :mod:`gcsbi.observe`): an image is an array
``[row, col] = [y, x]``; the centre of pixel ``(row i, col j)`` is at pixel
coordinates ``(x, y) = (j, i)``; row 0 is the bottom row (FITS/``origin='lower'``).
The stamp centre is ``((W-1)/2, (H-1)/2)``; GalSim's ``true_center`` of an
image of the same size is the same point, so a star at ``(x, y)`` is drawn by
GalSim with ``offset = (x - (W-1)/2, y - (H-1)/2)``.

Algorithm (:class:`Renderer`): for each band the pixel-convolved PSF at
sub-pixel phase ``delta`` is ``sum_l a_l(delta) B_l`` (:class:`~gcsbi.observe.psf.SubpixelKernel`).
Each star is deposited at its nearest pixel with weights ``flux * a_l(delta)``
(``a_l`` tabulated on a 64x64 phase grid, nearest lookup) into L images (one
sparse one-hot matrix product per band), which are FFT-convolved with their
basis stamps and summed in Fourier space.
The FFT grid is the stamp padded by the kernel radius r on every side, so
stars up to r pixels outside the stamp still contribute their wings and no
light wraps around. Cost: ``O(n_stars * L)`` + ``L`` real FFTs per band,
independent of the star count for the FFT part.

:func:`render_exact` is the slow reference: one GalSim ``drawImage`` per star.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import galsim
import numpy as np
import scipy.fft
import scipy.sparse

from ..errors import GcsbiValueError
from .psf import SubpixelKernel

if TYPE_CHECKING:
    from .star_counts import UnresolvedPixels

__all__ = ["Renderer", "render_exact", "mass_map"]


@dataclass(frozen=True, eq=False)
class Renderer:
    """Static rendering plan for a fixed stamp shape and one kernel per band (build once, call often).

    Attributes:
        shape: (H, W) output stamp in native pixels.
        pad: kernel radius r (pixels) used as padding.
        fft_shape: (My, Mx) FFT grid (>= stamp + 2r per axis).
        phases: phase steps per pixel of the coefficient lookup table.
        n_components: L per band.
    """

    shape: tuple[int, int]
    pad: int
    fft_shape: tuple[int, int]
    phases: int
    n_components: tuple[int, ...]
    _tables: tuple[np.ndarray, ...]  # per band (table_phases^2, L) float32 lookup of a_l
    _kernel_ft: tuple[np.ndarray, ...]  # per band (L, My, Mx//2+1) complex64 FFT of B_l
    _centred: tuple[np.ndarray, ...] = ()  # per band (L, table_phases^2) float32: a_l minus its phase average
    _mean_ft: tuple[np.ndarray, ...] = ()  # per band (My, Mx//2+1) complex64 FFT of the phase-averaged PSF

    @classmethod
    def build(
        cls,
        kernels: list[SubpixelKernel] | tuple[SubpixelKernel, ...],
        *,
        shape: tuple[int, int],
        table_phases: int = 64,
    ) -> Renderer:
        """Plan rendering of ``shape`` stamps with one kernel per band.

        The phase coefficients ``a_l`` are tabulated on a ``table_phases``
        grid per pixel (bilinear from the kernel's phase grid) and looked up
        by nearest phase at render time (position error <= 1/(2 table_phases) px).
        """
        if len(kernels) == 0:
            raise GcsbiValueError("Renderer needs at least one band kernel")
        h, w = (int(shape[0]), int(shape[1]))
        if h < 1 or w < 1:
            raise GcsbiValueError(f"stamp shape must be positive, got {shape}")
        if table_phases < 2:
            raise GcsbiValueError(f"table_phases must be >= 2, got {table_phases}")
        pad = max(k.radius for k in kernels)
        my = scipy.fft.next_fast_len(h + 2 * pad, real=True)
        mx = scipy.fft.next_fast_len(w + 2 * pad, real=True)
        qt = int(table_phases)
        tc = (np.arange(qt) + 0.5) / qt  # table bin j covers phase t in [j/qt, (j+1)/qt)
        tables, fts = [], []
        for k in kernels:
            r, q = k.radius, k.phases
            u = tc * q
            i0 = np.minimum(u.astype(np.intp), q - 1)
            wu = (u - i0)[None, :, None]
            c = k.coeff  # (L, q+1, q+1), axis 1 = y phase, axis 2 = x phase
            cy = c[:, i0, :] * (1 - wu) + c[:, i0 + 1, :] * wu
            wx = wu.reshape(1, 1, qt)
            cyx = cy[:, :, i0] * (1 - wx) + cy[:, :, i0 + 1] * wx  # (L, qt, qt)
            tables.append(np.ascontiguousarray(cyx.reshape(k.rank, qt * qt).T, dtype=np.float32))
            grid = np.zeros((k.rank, my, mx))
            iy = np.arange(-r, r + 1) % my
            ix = np.arange(-r, r + 1) % mx
            grid[:, iy[:, None], ix[None, :]] = k.basis  # kernel centre at (0, 0), wrapped
            fts.append(scipy.fft.rfft2(grid).astype(np.complex64))
        # phase averages of a_l (exactly rounded) and the FFT of the phase-averaged PSF, summed
        # term by term with element-wise operations (see the note on rounding in ``render``)
        means = [np.array([math.fsum(col) / t.shape[0] for col in t.astype(np.float64).T]) for t in tables]
        mean_fts = []
        for ft, m in zip(fts, means):
            acc = ft[0] * np.complex64(m[0])
            for term in range(1, ft.shape[0]):
                acc += ft[term] * np.complex64(m[term])
            mean_fts.append(acc.astype(np.complex64))
        return cls(
            shape=(h, w),
            pad=int(pad),
            fft_shape=(int(my), int(mx)),
            phases=qt,
            n_components=tuple(k.rank for k in kernels),
            _tables=tuple(tables),
            _kernel_ft=tuple(fts),
            _centred=tuple(np.ascontiguousarray((t - m).T, dtype=np.float32) for t, m in zip(tables, means)),
            _mean_ft=tuple(mean_fts),
        )

    @property
    def n_bands(self) -> int:
        return len(self.n_components)

    def render(self, x: np.ndarray, y: np.ndarray, flux: np.ndarray, *, workers: int = 1,
               grid: UnresolvedPixels | None = None) -> np.ndarray:
        """Noiseless image (F, H, W) float32 of point sources at pixel coordinates ``x, y`` with ``flux`` (F, n).

        Sources farther than the kernel radius outside the stamp are ignored
        (they contribute nothing within the truncated kernel).

        ``grid`` (a :class:`~gcsbi.observe.star_counts.UnresolvedPixels` with this renderer's padding)
        adds light given per pixel of the padded grid: each pixel's ``flux`` is deposited with the
        phase-averaged PSF, plus ``amplitude`` times (PSF at one random sub-pixel phase minus the
        phase average), at the random phase-table index ``grid.phase`` of each pixel.
        """
        h, w = self.shape
        nb = self.n_bands
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        flux = np.asarray(flux, dtype=np.float64)
        if flux.ndim == 1 and nb == 1:
            flux = flux[None, :]
        if flux.shape != (nb, x.size) or y.size != x.size:
            raise GcsbiValueError(
                f"flux must have shape ({nb}, {x.size}) and y {x.size} entries; got {flux.shape}, {y.size}"
            )
        out = np.zeros((nb, h, w), dtype=np.float32)
        r, qt = self.pad, self.phases
        my, mx = self.fft_shape
        fx = np.floor(x + 0.5)
        fy = np.floor(y + 0.5)
        keep = (fx >= -r) & (fx < w + r) & (fy >= -r) & (fy < h + r)
        keep &= np.any(flux != 0, axis=0)
        if not np.all(keep):
            x, y, fx, fy, flux = x[keep], y[keep], fx[keep], fy[keep], flux[:, keep]
        n = x.size
        if n == 0 and grid is None:
            return out
        if grid is not None and (grid.pad != r or grid.flux.shape != (nb, h + 2 * r, w + 2 * r)):
            raise GcsbiValueError(f"grid light must be ({nb}, {h + 2 * r}, {w + 2 * r}) with pad {r}, got "
                                  f"{grid.flux.shape} with pad {grid.pad}")
        jx = np.minimum(((x - fx + 0.5) * qt).astype(np.intp), qt - 1)
        jy = np.minimum(((y - fy + 0.5) * qt).astype(np.intp), qt - 1)
        phase = jy * qt + jx
        pix = (fy + r).astype(np.intp) * mx + (fx + r).astype(np.intp)
        indptr = np.arange(n + 1, dtype=np.int32 if my * mx < 2**31 and n < 2**31 else np.int64)
        pix = pix.astype(indptr.dtype)
        hp, wp = h + 2 * r, w + 2 * r
        if grid is not None:
            gphase = grid.phase.ravel()
        for b in range(nb):
            a = self._tables[b][phase]  # (n, L) float32
            # one-hot deposit matrix (pixels x stars) with the fluxes as entries: dep = S @ a, then
            # one contiguous plane per basis term (L, My, Mx) for the FFTs and the sums below
            s = scipy.sparse.csc_matrix((flux[b].astype(np.float32), pix, indptr), shape=(my * mx, n))
            dep = np.ascontiguousarray(np.asarray(s @ a).T).reshape(a.shape[1], my, mx)
            if grid is not None:  # the zero-mean sub-pixel phase term (the mean term is added in Fourier space)
                term = np.take(self._centred[b], gphase, axis=1)  # (L, Hp*Wp)
                term *= grid.amplitude[b].reshape(1, -1).astype(np.float32)
                dep[:, :hp, :wp] += term.reshape(-1, hp, wp)
            ft = scipy.fft.rfft2(dep, workers=workers)
            # Sum over the L basis terms in a fixed order with element-wise operations only:
            # np.einsum / reductions pick SIMD paths by memory alignment, which changes the
            # rounding from process to process and broke "same seed, same bytes".
            kft = self._kernel_ft[b]
            acc = ft[0] * kft[0]
            for term in range(1, ft.shape[0]):
                acc += ft[term] * kft[term]
            if grid is not None:
                smooth = np.zeros((my, mx), dtype=np.float32)
                smooth[:hp, :wp] = grid.flux[b]
                acc += scipy.fft.rfft2(smooth, workers=workers) * self._mean_ft[b]
            img = scipy.fft.irfft2(acc, s=(my, mx), workers=workers)
            out[b] = img[r : r + h, r : r + w]
        return out


def render_exact(
    profile: galsim.GSObject,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    *,
    shape: tuple[int, int],
    pixel_scale_arcsec: float,
    pixel_convolved: bool,
) -> np.ndarray:
    """Slow reference: ``profile.withFlux(f).drawImage(offset=...)`` per star, summed; (H, W) float64.

    ``pixel_convolved=False`` draws with ``method='auto'`` (GalSim adds the
    pixel), ``True`` with ``method='no_pixel'``.
    """
    h, w = shape
    img = galsim.ImageD(w, h, scale=pixel_scale_arcsec)
    method = "no_pixel" if pixel_convolved else "auto"
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    for xi, yi, fi in zip(np.ravel(x), np.ravel(y), np.ravel(flux)):
        profile.withFlux(float(fi)).drawImage(
            image=img, offset=(float(xi - cx), float(yi - cy)), method=method, add_to_image=True
        )
    return img.array.copy()


def mass_map(x: np.ndarray, y: np.ndarray, mass: np.ndarray, *, shape: tuple[int, int]) -> np.ndarray:
    """Projected mass per pixel (H, W) float32 (nearest pixel, no PSF); mass outside the stamp is dropped."""
    h, w = shape
    ix = np.floor(np.asarray(x, dtype=np.float64) + 0.5)
    iy = np.floor(np.asarray(y, dtype=np.float64) + 0.5)
    m = np.asarray(mass, dtype=np.float64)
    keep = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    idx = iy[keep].astype(np.intp) * w + ix[keep].astype(np.intp)
    return np.bincount(idx, weights=m[keep], minlength=h * w).reshape(h, w).astype(np.float32)
