"""RGB composites of multi-band mock images (for looking at them, not for the network)."""

from __future__ import annotations

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["rgb_composite", "rgb_bands"]


def _rgb_index(n_bands: int) -> np.ndarray:
    """Indices of the bands shown as blue, green, red among ``n_bands`` ordered blue -> red."""
    return np.linspace(0, n_bands - 1, 3).round().astype(int)


def rgb_bands(bands) -> tuple[str, str, str]:
    """(red, green, blue) band names of :func:`rgb_composite` for bands ordered blue -> red."""
    bands = list(bands)
    b, g, r = (bands[i] for i in _rgb_index(len(bands)))
    return r, g, b


def rgb_composite(image: np.ndarray, *, sky: np.ndarray | None = None, stretch: float | None = None,
                  q: float = 8.0) -> np.ndarray:
    """An (H, W, 3) float RGB array in [0, 1] from a (F, H, W) counts image, reddest band as red.

    Lupton et al. (2004) style arcsinh stretch applied to the summed intensity, so colours are
    preserved; bands are ordered blue -> red along the first axis (as in the specs). Each band
    is divided by its median absolute deviation first so that the noise looks alike in all.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[0] < 1:
        raise GcsbiValueError(f"image must have shape (F, H, W), got {img.shape}")
    if sky is not None:
        img = img - np.asarray(sky, dtype=np.float64).reshape(-1, 1, 1)
    scale = np.median(np.abs(img - np.median(img, axis=(1, 2), keepdims=True)), axis=(1, 2), keepdims=True)
    img = img / np.maximum(scale, 1e-12)
    idx = _rgb_index(img.shape[0])
    b, g, r = img[idx[0]], img[idx[1]], img[idx[2]]
    intensity = (r + g + b) / 3.0
    if stretch is None:
        stretch = max(float(np.percentile(intensity, 99.5)), 1e-6) / 10.0
    f = np.arcsinh(q * np.clip(intensity, 0, None) / stretch) / q
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(intensity > 0, f / intensity, 0.0)
    rgb = np.stack([r * ratio, g * ratio, b * ratio], axis=-1)
    rgb = np.clip(rgb / max(float(np.percentile(rgb, 99.9)), 1e-12), 0.0, 1.0)
    return rgb
