"""Detector noise: Poisson on source + sky + background, Gaussian read noise.

Everything draws from an explicit ``numpy.random.Generator``; the same
generator state gives the same bytes.
"""

from __future__ import annotations

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["add_noise"]


def add_noise(
    expected: np.ndarray,
    *,
    read_noise_e: np.ndarray | float,
    rng: np.random.Generator,
    poisson: bool = True,
) -> np.ndarray:
    """Noisy image (float32, e-) from the expected counts ``expected`` (C, H, W) in e-.

    ``poisson``: replace each pixel by a Poisson draw of its expectation
    (negative expectations, e.g. FFT round-off, are clipped to 0).
    ``read_noise_e``: Gaussian sigma per band (C,) or scalar, in e- (0 = none).
    """
    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError("rng must be a numpy.random.Generator")
    lam = np.asarray(expected, dtype=np.float64)
    if lam.ndim != 3:
        raise GcsbiValueError(f"expected counts must have shape (C, H, W), got {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise GcsbiValueError("expected counts contain NaN or inf")
    rn = np.broadcast_to(np.asarray(read_noise_e, dtype=np.float64), (lam.shape[0],))
    if np.any(rn < 0):
        raise GcsbiValueError("read noise must be >= 0")
    if poisson:
        out = rng.poisson(np.clip(lam, 0.0, None)).astype(np.float32)
    else:
        out = lam.astype(np.float32)
    if np.any(rn > 0):
        out += rng.standard_normal(lam.shape, dtype=np.float32) * rn.astype(np.float32)[:, None, None]
    return out
