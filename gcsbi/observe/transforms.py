"""Input transforms: counts images -> network inputs, identical for mocks and real data.

``transform(image, spec)`` maps a (F, H, W) image in e- (total over the
exposure, sky *not* subtracted; real ``e-/s`` images must be multiplied by the
exposure time first) to ``x`` (C', H, W) float32, finite everywhere:

1. **log-flux** per band, on ``f = counts - sky`` (sky from the spec, or given):
   ``asinh``: ``asinh(f / (s * sigma))``; ``log10``: ``log10(max(f, s * sigma) / (s * sigma))``,
   with ``s = softening`` and ``sigma = sqrt(sky + read_noise_total**2)`` the
   band's background noise (>= 1 e-).
2. **colours**: for each pair ``(a, b)`` in ``transforms.colors``, the difference
   of the log-flux channels ``L_a - L_b`` (for ``log10``, ``-2.5 x`` this is
   the colour in mag above the floor).
3. **pixel CMD** (``transforms.cmd``): a ``cmd_bins x cmd_bins`` histogram of
   per-pixel apparent magnitude ``m = ZP - 2.5 log10(f / t)`` in
   ``cmd_mag_filter`` (rows) vs colour ``m_a - m_b`` of ``cmd_color``
   (columns), over pixels with positive flux in all three bands, values
   clipped into the edge bins, normalised to the fraction of all pixels; it is
   nearest-upsampled to (H, W) and appended as **one extra channel** so that
   ``x`` stays a single image tensor. :func:`pixel_cmd` returns the compact
   histogram for use as a separate vector.

Channel order: log-flux (F, spec filter order), colours, CMD; see
:func:`channel_names`.
"""

from __future__ import annotations

import numpy as np

from ..errors import GcsbiValueError
from ..spec.simulator_spec import SimulatorSpec

__all__ = ["channel_names", "noise_sigma", "sky_levels", "log_flux", "pixel_cmd", "transform"]

_MAX_ABS = 1e4  # log outputs are clipped to +-this (float32-safe, far beyond any real value)


def sky_levels(spec: SimulatorSpec) -> np.ndarray:
    """Sky per pixel (F,) in e- as added by the simulator (0 where ``noise.sky`` is off)."""
    if not spec.noise.sky:
        return np.zeros(len(spec.filters))
    return np.array([b.sky_e for b in spec.instrument.bands], dtype=np.float64)


def noise_sigma(spec: SimulatorSpec) -> np.ndarray:
    """Background noise per band (F,) in e-: ``sqrt(sky + read_noise_total^2)``, at least 1."""
    rn = np.array([b.read_noise_total_e if spec.noise.read_noise else 0.0 for b in spec.instrument.bands])
    return np.maximum(np.sqrt(sky_levels(spec) + rn**2), 1.0)


def channel_names(spec: SimulatorSpec) -> list[str]:
    """Names of the output channels of :func:`transform`."""
    t = spec.transforms
    if t.log_flux == "none":
        return [f"counts_{f}" for f in spec.filters]
    names = [f"{t.log_flux}_{f}" for f in spec.filters]
    names += [f"color_{a}-{b}" for a, b in t.colors]
    if t.cmd:
        names.append(f"cmd_{t.cmd_mag_filter}_vs_{t.cmd_color[0]}-{t.cmd_color[1]}")
    return names


def _check_image(image: np.ndarray, spec: SimulatorSpec) -> np.ndarray:
    img = np.asarray(image)
    nf = len(spec.filters)
    if img.ndim != 3 or img.shape[0] != nf:
        raise GcsbiValueError(f"image must have shape ({nf}, H, W) for filters {spec.filters}, got {img.shape}")
    if img.size and not np.all(np.isfinite(img)):
        raise GcsbiValueError("image contains NaN or inf; mask or fill bad pixels before transforming")
    return img.astype(np.float64)


def _sky(spec: SimulatorSpec, sky: np.ndarray | float | None) -> np.ndarray:
    nf = len(spec.filters)
    s = sky_levels(spec) if sky is None else np.broadcast_to(np.asarray(sky, dtype=np.float64), (nf,))
    if not np.all(np.isfinite(s)):
        raise GcsbiValueError("sky levels must be finite")
    return s


def log_flux(image: np.ndarray, spec: SimulatorSpec, *, sky: np.ndarray | float | None = None) -> np.ndarray:
    """Per-band log-flux channels (F, H, W) float64 (see module docstring)."""
    img = _check_image(image, spec)
    f = img - _sky(spec, sky)[:, None, None]
    scale = (spec.transforms.softening * noise_sigma(spec))[:, None, None]
    if spec.transforms.log_flux == "asinh":
        return np.arcsinh(f / scale)
    if spec.transforms.log_flux == "log10":
        return np.log10(np.maximum(f, scale) / scale)
    return f


def pixel_cmd(image: np.ndarray, spec: SimulatorSpec, *, sky: np.ndarray | float | None = None) -> np.ndarray:
    """Pixel colour-magnitude histogram (cmd_bins, cmd_bins) float32: rows = magnitude, cols = colour."""
    t = spec.transforms
    if not t.cmd:
        raise GcsbiValueError("transforms.cmd is off in this spec")
    img = _check_image(image, spec)
    f = img - _sky(spec, sky)[:, None, None]
    filt = list(spec.filters)
    im, ia, ib = filt.index(t.cmd_mag_filter), filt.index(t.cmd_color[0]), filt.index(t.cmd_color[1])
    bands = spec.instrument.bands

    def mag(i: int, v: np.ndarray) -> np.ndarray:
        return bands[i].zeropoint_vega - 2.5 * np.log10(v / bands[i].exposure_s)

    nb = t.cmd_bins
    hist = np.zeros((nb, nb), dtype=np.float64)
    npix = f.shape[1] * f.shape[2]
    good = (f[im] > 0) & (f[ia] > 0) & (f[ib] > 0)
    if npix and np.any(good):
        m = mag(im, f[im][good])
        c = mag(ia, f[ia][good]) - mag(ib, f[ib][good])
        (m0, m1), (c0, c1) = t.cmd_mag_range, t.cmd_color_range
        rm = np.clip(((m - m0) / (m1 - m0) * nb).astype(np.int64), 0, nb - 1)
        rc = np.clip(((c - c0) / (c1 - c0) * nb).astype(np.int64), 0, nb - 1)
        hist = np.bincount(rm * nb + rc, minlength=nb * nb).reshape(nb, nb) / npix
    return hist.astype(np.float32)


def transform(image: np.ndarray, spec: SimulatorSpec, *, sky: np.ndarray | float | None = None) -> np.ndarray:
    """Network input ``x`` (C', H, W) float32 from a counts image (F, H, W); finite for any finite input."""
    t = spec.transforms
    lf = log_flux(image, spec, sky=sky)
    chans = [lf]
    if t.log_flux != "none":
        filt = list(spec.filters)
        if t.colors:
            chans.append(np.stack([lf[filt.index(a)] - lf[filt.index(b)] for a, b in t.colors]))
        if t.cmd:
            h, w = lf.shape[1:]
            hist = pixel_cmd(image, spec, sky=sky)
            nb = t.cmd_bins
            rows = (np.arange(h) * nb) // max(h, 1)
            cols = (np.arange(w) * nb) // max(w, 1)
            chans.append(hist[np.ix_(rows, cols)][None].astype(np.float64))
    x = np.concatenate(chans, axis=0)
    lim = _MAX_ABS if t.log_flux != "none" else 1e30
    x = np.nan_to_num(x, nan=0.0, posinf=lim, neginf=-lim)
    return np.clip(x, -lim, lim).astype(np.float32)
