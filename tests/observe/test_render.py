"""Fast renderer vs exact per-star GalSim drawing; user PSF images; truth maps."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.errors import GcsbiFileError, GcsbiValueError
from gcsbi.observe.psf import build_subpixel_kernel, file_psf, load_psf_image
from gcsbi.observe.render import Renderer, mass_map, render_exact


def _random_stars(rng, n, shape, margin):
    h, w = shape
    x = rng.uniform(-margin, w - 1 + margin, n)
    y = rng.uniform(-margin, h - 1 + margin, n)
    flux = 10 ** rng.uniform(2, 5, n)
    return x, y, flux


def _rms_rel(fast, exact):
    return float(np.sqrt(np.mean((fast - exact) ** 2)) / exact.max())


def test_accuracy_vs_galsim_optical(hst_f814w, rng):
    prof, kern = hst_f814w
    shape = (40, 48)
    x, y, f = _random_stars(rng, 200, shape, margin=6)  # includes stars just outside the stamp
    fast = Renderer.build([kern], shape=shape).render(x, y, f[None])[0]
    exact = render_exact(prof, x, y, f, shape=shape, pixel_scale_arcsec=0.05, pixel_convolved=False)
    assert fast.dtype == np.float32 and fast.shape == shape
    assert _rms_rel(fast, exact) < 0.01
    # a non-trivial check: a half-pixel offset of all stars breaks the agreement
    shifted = Renderer.build([kern], shape=shape).render(x + 0.5, y, f[None])[0]
    assert _rms_rel(shifted, exact) > 0.02


def test_star_outside_stamp_contributes_wings(hst_f814w):
    prof, kern = hst_f814w
    shape = (32, 32)
    r = Renderer.build([kern], shape=shape)
    img = r.render(np.array([-4.0]), np.array([15.0]), np.array([[1e6]]))[0]
    exact = render_exact(prof, [-4.0], [15.0], [1e6], shape=shape, pixel_scale_arcsec=0.05, pixel_convolved=False)
    assert img[:, 0].sum() > 0
    star_peak = 1e6 * _peak(kern)
    # the truncated kernel (radius 12) misses only the far wings: error << the star's own peak
    assert np.abs(img - exact).max() < 0.01 * star_peak
    far = r.render(np.array([-100.0]), np.array([15.0]), np.array([[1e6]]))[0]
    assert np.all(far == 0)


def _peak(kern) -> float:
    """Peak pixel value of the unit-flux kernel at phase 0."""
    q = kern.phases // 2
    return float(np.tensordot(kern.coeff[:, q, q], kern.basis, 1).max())


def test_flux_conservation_and_empty(hst_f814w):
    _, kern = hst_f814w
    r = Renderer.build([kern, kern], shape=(64, 64))
    img = r.render(np.array([31.3]), np.array([30.8]), np.array([[1000.0], [0.0]]))
    assert img[0].sum() == pytest.approx(1000.0 * kern.flux_in_stamp, rel=5e-3)
    assert np.all(img[1] == 0)
    empty = r.render(np.array([]), np.array([]), np.zeros((2, 0)))
    assert empty.shape == (2, 64, 64) and not empty.any()
    with pytest.raises(GcsbiValueError):
        r.render(np.zeros(3), np.zeros(3), np.ones((1, 3)))


def test_user_psf_tinytim_fits(shared_data, rng):
    img, scale = load_psf_image(shared_data / "psf" / "acs_wfc_tinytim" / "ACS_WFC_F814W.fits")
    assert scale == pytest.approx(0.0495)
    assert img.sum() == pytest.approx(1.0)
    prof = file_psf(img, pixel_scale_arcsec=scale)
    kern = build_subpixel_kernel(prof, pixel_scale_arcsec=0.05, pixel_convolved=True, radius=12, phases=16)
    shape = (32, 32)
    x, y, f = _random_stars(rng, 100, shape, margin=3)
    fast = Renderer.build([kern], shape=shape).render(x, y, f[None])[0]
    exact = render_exact(prof, x, y, f, shape=shape, pixel_scale_arcsec=0.05, pixel_convolved=True)
    assert _rms_rel(fast, exact) < 0.01


def test_user_psf_empirical_npy_supersampled(shared_data, rng):
    path = shared_data / "psf" / "wfc3_uvis_empirical" / "emp_psf_f814w_4x.npy"
    img, scale = load_psf_image(path, index=27)
    assert scale is None and img.shape == (101, 101)
    prof = file_psf(img, pixel_scale_arcsec=0.04 / 4)  # 4x supersampled UVIS ePSF
    # this ePSF file has a broad flat pedestal: use a kernel covering all of it (101 / 4 / 2 < 13 px)
    kern = build_subpixel_kernel(prof, pixel_scale_arcsec=0.04, pixel_convolved=True, radius=13, phases=16)
    shape = (32, 32)
    x, y, f = _random_stars(rng, 100, shape, margin=3)
    fast = Renderer.build([kern], shape=shape).render(x, y, f[None])[0]
    exact = render_exact(prof, x, y, f, shape=shape, pixel_scale_arcsec=0.04, pixel_convolved=True)
    assert _rms_rel(fast, exact) < 0.01
    with pytest.raises(GcsbiValueError, match="out of range"):
        load_psf_image(path, index=56)


def test_bad_psf_files(tmp_path):
    with pytest.raises(GcsbiFileError):
        load_psf_image(tmp_path / "none.fits")
    p = tmp_path / "bad.npy"
    np.save(p, np.zeros((5, 5)))
    with pytest.raises(GcsbiFileError, match="non-positive"):
        load_psf_image(p)


def test_mass_map():
    x = np.array([0.2, 0.4, 9.0, 50.0])
    y = np.array([0.1, -0.3, 3.0, 2.0])
    m = mass_map(x, y, np.array([1.0, 2.0, 4.0, 8.0]), shape=(10, 10))
    assert m.dtype == np.float32
    assert m[0, 0] == 3.0 and m[3, 9] == 4.0 and m.sum() == 7.0  # last one is off the stamp
