"""Fixtures shared by the observation-chain tests: small PSFs and kernels, built once."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.observe.psf import build_subpixel_kernel, exact_profile, optical_psf


@pytest.fixture(scope="session")
def hst_f814w():
    """HST-like optical PSF at 805 nm on 0.05" pixels: (exact profile, kernel)."""
    prof = optical_psf(wavelength_nm=805.0, diameter_m=2.4, obscuration=0.33, nstruts=4, strut_angle_deg=45.0)
    k = build_subpixel_kernel(prof, pixel_scale_arcsec=0.05, pixel_convolved=False, jitter_sigma_arcsec=0.007,
                              radius=12, phases=16, tol=3e-3)  # fmt: skip
    return exact_profile(prof, jitter_sigma_arcsec=0.007), k


def plummer_stars(rng: np.random.Generator, n: int, *, a_pc: float = 1.0) -> np.ndarray:
    """(n, 3) positions of a Plummer sphere of scale radius ``a_pc``."""
    u = rng.random(n)
    r = a_pc / np.sqrt(u ** (-2.0 / 3.0) - 1.0)
    v = rng.standard_normal((n, 3))
    return r[:, None] * v / np.linalg.norm(v, axis=1, keepdims=True)
